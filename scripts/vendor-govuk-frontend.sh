#!/bin/sh
# Vendors the GOV.UK Frontend build the console serves, and axe-core for its accessibility
# test, from the npm registry at pinned versions. The console never fetches anything at run
# time: the copied files are committed (console/static/govuk/ is package data).
# Run again after changing a version below, and commit what it copies.
set -eu

GOVUK_FRONTEND_VERSION=6.6.0
AXE_CORE_VERSION=4.14.1

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null 2>&1 || { echo "error: npm not found (apt-get install npm)" >&2; exit 1; }

(cd "$work" && npm pack --silent "govuk-frontend@$GOVUK_FRONTEND_VERSION" "axe-core@$AXE_CORE_VERSION" >/dev/null)
mkdir "$work/govuk" "$work/axe"
tar -xzf "$work/govuk-frontend-$GOVUK_FRONTEND_VERSION.tgz" -C "$work/govuk"
tar -xzf "$work/axe-core-$AXE_CORE_VERSION.tgz" -C "$work/axe"

dist="$work/govuk/package/dist/govuk"
target="$root/console/static/govuk"
rm -rf "$target"
mkdir -p "$target"
cp "$dist/govuk-frontend.min.css" "$dist/govuk-frontend.min.js" "$target/"
cp -R "$dist/assets" "$target/assets"
# The npm package ships no licence file of its own: its package.json says "MIT" and its
# README's Licence section says what that covers; both go beside the copied files, with the
# MIT terms as the upstream repository states them.
{
    echo "GOV.UK Frontend $GOVUK_FRONTEND_VERSION (npm package govuk-frontend)"
    echo "package.json license: $(sed -n 's/^ *"license": *"\(.*\)",*$/\1/p' "$work/govuk/package/package.json")"
    echo
    sed -n '/^## Licence/,/^## /p' "$work/govuk/package/README.md" | sed '$d'
    cat <<'MIT'
The MIT License (MIT)

Copyright (c) 2018 Crown Copyright (Government Digital Service)

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
MIT
} >"$target/LICENCE.txt"
echo "$GOVUK_FRONTEND_VERSION" >"$target/VERSION"

axe="$root/tests/browser/vendor"
mkdir -p "$axe"
cp "$work/axe/package/axe.min.js" "$axe/axe.min.js"
cp "$work/axe/package/LICENSE" "$axe/axe-core-LICENCE.txt"
echo "$AXE_CORE_VERSION" >"$axe/AXE_VERSION"

echo "govuk-frontend $GOVUK_FRONTEND_VERSION -> console/static/govuk/; axe-core $AXE_CORE_VERSION -> tests/browser/vendor/"
