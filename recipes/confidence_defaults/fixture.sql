-- confidence_defaults fixture: phases imported from an old tracker. Some have no
-- status (NULL or blank); many have no project, although most phase names start
-- with the project's code ("ALPHA-Build").

CREATE TABLE projects (
  id         integer PRIMARY KEY,
  legacy_id  integer UNIQUE,
  code       text NOT NULL UNIQUE,
  name       text NOT NULL
);

INSERT INTO projects (id, legacy_id, code, name) VALUES
  (1, 1001, 'ALPHA', 'Alpha onboarding'),
  (2, 1002, 'BRAVO', 'Bravo billing'),
  (3, 1003, 'CAFE',  'Café Zoë loyalty'),
  (4, NULL, 'DELTA', 'Delta data platform');

CREATE TABLE phases (
  id         integer PRIMARY KEY,
  legacy_id  integer UNIQUE,
  project_id integer REFERENCES projects,
  name       text,
  status     text
);

INSERT INTO phases (id, legacy_id, project_id, name, status) VALUES
  (1,  7001, 1,    'ALPHA-Discovery',            'Done'),
  (2,  7002, NULL, 'ALPHA-Build',                NULL),        -- status; project ALPHA (medium)
  (3,  7003, NULL, 'BRAVO-Discovery',            '  '),        -- blank status; project BRAVO (medium)
  (4,  7004, 2,    'BRAVO-Launch',               NULL),        -- status only
  (5,  7005, NULL, 'cafe-Menu rollout',          'On hold'),   -- project CAFE, case differs (low)
  (6,  7006, NULL, 'Retrospective',              NULL),        -- status; no code prefix
  (7,  NULL, NULL, NULL,                         NULL),        -- status; no name at all
  (8,  7008, NULL, 'ZULU-Sunset',                'Cancelled'), -- prefix matches no project
  (9,  7009, 3,    'CAFE-Design',                'Active'),
  (10, 7010, NULL, 'DELTA – Café Zoë migration', NULL);        -- status; project DELTA (medium)
