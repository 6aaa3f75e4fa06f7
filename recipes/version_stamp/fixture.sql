-- version_stamp fixture: documents written by three generations of the app.
-- Version 2 of the document format is out; rows must say so. Rows without a
-- version (NULL or blank) and rows at "v1" are stamped "v2". Anything else
-- ("v9-custom" from a customer's fork, "V1" typed by hand) is not ours to
-- change: it is left alone and reported.

CREATE TABLE documents (
  id             integer PRIMARY KEY,
  project_id     integer,
  title          text,
  schema_version text,
  body           jsonb,
  updated_at     timestamptz NOT NULL
);

INSERT INTO documents (id, project_id, title, schema_version, body, updated_at) VALUES
  (1, 1,    'Kick-off notes',          NULL,        '{"blocks": 3}',  '2023-11-02 10:00:00+00'),
  (2, 1,    'Café Zoë menu spec',      'v1',        '{"blocks": 12}', '2024-01-15 09:30:00+00'),
  (3, 2,    'Custom import mapping',   'v9-custom', '{"blocks": 7}',  '2024-02-01 14:00:00+00'),
  (4, 2,    'Runbook',                 'v2',        '{"blocks": 40}', '2024-04-20 08:00:00+00'),
  (5, 3,    'Glossary – Ünïcode',      '  ',        '{"blocks": 5}',  '2023-06-30 16:45:00+00'),
  (6, 3,    'Budget 2024',             'v1',        NULL,             '2024-01-03 11:00:00+00'),
  (7, NULL, NULL,                      NULL,        '{}',             '2022-12-24 00:00:00+00'),
  (8, 4,    'Release checklist',       'V1',        '{"blocks": 9}',  '2024-03-08 12:00:00+00');
