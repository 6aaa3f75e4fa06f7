-- demo fixture: a small project tracker just migrated from a legacy system.
-- Projects carry their legacy integer ids and need UUIDs; phases have empty
-- statuses (NULL or blank) and many have lost their project, although their
-- names still start with the project's code.

CREATE TABLE projects (
  id        integer PRIMARY KEY,
  legacy_id integer UNIQUE,              -- id in the legacy tracker
  uuid      uuid UNIQUE,                 -- new: stable id for the new services
  code      text NOT NULL UNIQUE,
  name      text NOT NULL,
  status    text
);

INSERT INTO projects (id, legacy_id, uuid, code, name, status) VALUES
  (1, 1001, NULL, 'ALPHA', 'Alpha onboarding',    'active'),
  (2, 1002, NULL, 'BRAVO', 'Bravo billing',       NULL),
  (3, 1003, NULL, 'CAFE',  'Café Zoë loyalty',    'active'),
  (4, NULL, NULL, 'DELTA', 'Delta data platform', '  '),      -- created after the migration
  (5, 1005, '0b7d3c1e-5f2a-4c6b-9d8e-7a6b5c4d3e05', 'ECHO', 'Echo search', 'planned');

CREATE TABLE phases (
  id         integer PRIMARY KEY,
  legacy_id  integer UNIQUE,
  project_id integer REFERENCES projects,
  name       text,
  status     text
);

INSERT INTO phases (id, legacy_id, project_id, name, status) VALUES
  (1, 7001, 1,    'ALPHA-Discovery',         'Done'),
  (2, 7002, NULL, 'ALPHA-Build',             NULL),
  (3, 7003, NULL, 'BRAVO-Invoices',          '  '),
  (4, 7004, 2,    'BRAVO-Launch',            NULL),
  (5, NULL, NULL, 'CAFE-Menu – Zoë''s pick', 'On hold'),
  (6, 7006, NULL, 'Retrospective',           NULL),
  (7, 7007, 3,    'CAFE-Design',             'Active'),
  (8, 7008, NULL, 'DELTA-Migration',         NULL);
