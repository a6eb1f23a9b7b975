-- The fictional police database that police.toml reads: the force's records as a records
-- management system might hold them, under its own names (nominals, locations, CAD
-- references). tests/contract/postgres_support.py loads it with the rows of ../data/*.csv.
-- A force writes its own queries over the views it grants the adapter's read-only role.

CREATE TABLE nominal (
    nominal_ref      text PRIMARY KEY,
    forename         text NOT NULL,
    surname          text NOT NULL,
    born_on          date,
    postcode         text,
    location_ref     text NOT NULL,
    strengths        text,
    engagement       text,
    engagement_notes text
);
CREATE INDEX nominal_born_on ON nominal (born_on);
CREATE INDEX nominal_location ON nominal (location_ref);

-- One row per nominal involved in an incident.
CREATE TABLE incident_nominal (
    incident_ref text NOT NULL,
    nominal_ref  text NOT NULL REFERENCES nominal,
    occurred_on  date NOT NULL,
    category     text NOT NULL,
    summary      text NOT NULL
);
CREATE INDEX incident_nominal_ref ON incident_nominal (nominal_ref);

CREATE TABLE call_out (
    cad_ref        text PRIMARY KEY,
    location_ref   text NOT NULL,
    occurred_on    date NOT NULL,
    reason         text NOT NULL,
    domestic_abuse boolean NOT NULL
);
CREATE INDEX call_out_location ON call_out (location_ref);

CREATE TABLE risk_nominal (
    nominal_ref  text NOT NULL REFERENCES nominal,
    relationship text NOT NULL,
    risk_summary text NOT NULL
);

CREATE TABLE restricted_intelligence (
    intelligence_ref text PRIMARY KEY,
    nominal_ref      text NOT NULL REFERENCES nominal,
    category         text NOT NULL,
    summary          text NOT NULL
);
