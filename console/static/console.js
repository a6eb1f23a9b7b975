// Keeps the board live: the server says when a packet or an event arrived, and the board's
// rows are read again. Without JavaScript the board works with its refresh link.
(function () {
  var board = document.getElementById('board');
  if (!board || !window.EventSource) return;
  var busy = false, again = false;
  function reload() {
    if (busy) { again = true; return; }
    busy = true;
    fetch('/board/rows', { credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401) { window.location = '/login'; return null; }
      return r.text();
    }).then(function (html) {
      if (html !== null) board.innerHTML = html;
    }).finally(function () {
      busy = false;
      if (again) { again = false; reload(); }
    });
  }
  new EventSource('/board/stream').onmessage = reload;
})();
