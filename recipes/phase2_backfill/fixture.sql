-- phase2_backfill fixture: the "phase 2" schema change of a project tracker.
-- New columns were added next to legacy ones and must be backfilled:
--   users.active                    NULL -> TRUE (an explicit FALSE is a decision)
--   time_entries.duration_seconds   from duration_minutes
--   tasks.assignee_id               from the legacy owner_id, if that user exists
--   projects.started_at             earliest assignment, else created_at
--   projects.completed_at           when every assignment is done
--   customers.uuid                  stable UUID for the legacy CRM id
--   projects_new                    the new table, kept in sync with projects

CREATE TABLE customers (
  id        integer PRIMARY KEY,
  legacy_id text,                      -- id in the old CRM export, as text
  uuid      uuid UNIQUE,
  name      text NOT NULL
);

INSERT INTO customers (id, legacy_id, uuid, name) VALUES
  (1, '1001',   NULL, 'Acme GmbH'),
  (2, '1002',   NULL, 'Café Zoë SARL'),
  (3, ' 1003 ', NULL, 'Øresund Logistik ApS'),      -- padded in the export
  (4, 'n/a',    NULL, 'Walk-in customer'),          -- not a legacy id: audited
  (5, NULL,     NULL, 'Signed up last week'),       -- no legacy id: audited
  (6, '1006',   '3f0c9a52-6c1e-4d8b-9a57-2b1f0e4d6c06', 'Already migrated');

CREATE TABLE users (
  id           integer PRIMARY KEY,
  legacy_id    integer UNIQUE,
  email        text NOT NULL,
  display_name text,
  active       boolean,
  created_at   timestamptz NOT NULL
);

INSERT INTO users (id, legacy_id, email, display_name, active, created_at) VALUES
  (1, 501,  'ana@example.com',  'Ana Lima',     true,  '2023-09-01 08:00:00+00'),
  (2, 502,  'zoe@example.com',  'Zoë Çelik',    NULL,  '2023-09-15 08:00:00+00'),
  (3, 503,  'jose@example.com', 'José Álvarez', false, '2023-10-01 08:00:00+00'),  -- deactivated
  (4, NULL, 'bot@example.com',  '  ',           NULL,  '2024-01-02 00:00:00+00'),
  (5, 505,  'mei@example.com',  '王美',          NULL,  '2024-02-01 08:00:00+00'),
  (6, 506,  'old@example.com',  'Former Staff', false, '2022-01-10 08:00:00+00');  -- deactivated

CREATE TABLE projects (
  id           integer PRIMARY KEY,
  code         text NOT NULL UNIQUE,
  name         text NOT NULL,
  status       text,
  customer_id  integer REFERENCES customers,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  started_at   timestamptz,
  completed_at timestamptz
);

INSERT INTO projects (id, code, name, status, customer_id, created_at, updated_at, started_at, completed_at) VALUES
  (1, 'ALPHA',   'Alpha onboarding',      'active',  1,    '2024-01-02 09:00:00+00', '2024-03-15 17:30:00+00', NULL, NULL),
  (2, 'BRAVO',   'Bravo billing',         'active',  2,    '2024-01-15 09:00:00+00', '2024-04-01 10:00:00+00', NULL, NULL),
  (3, 'CAFE',    'Café Zoë loyalty',      NULL,      2,    '2024-03-01 08:00:00+00', '2024-03-01 08:00:00+00', NULL, NULL),
  (4, 'DELTA',   'Delta data platform',   'active',  3,    '2023-11-20 09:00:00+00', '2024-04-02 12:00:00+00', '2023-12-01 09:00:00+00', NULL),
  (5, 'ECHO',    'Echo – Ünïcode search', 'planned', NULL, '2024-04-20 09:00:00+00', '2024-05-02 09:00:00+00', NULL, NULL),
  (6, 'FOXTROT', 'Foxtrot archive',       'done',    1,    '2023-06-01 09:00:00+00', '2024-02-01 09:00:00+00', NULL, '2024-01-31 18:00:00+00');

CREATE TABLE assignments (
  id          integer PRIMARY KEY,
  project_id  integer NOT NULL REFERENCES projects,
  user_id     integer NOT NULL REFERENCES users,
  role        text,
  assigned_at timestamptz,               -- NULL for rows migrated from the first tracker
  status      text NOT NULL,             -- 'open' | 'done'
  done_at     timestamptz
);

INSERT INTO assignments (id, project_id, user_id, role, assigned_at, status, done_at) VALUES
  (1, 1, 1, 'lead',     '2024-01-10 09:00:00+00', 'done', '2024-02-01 16:00:00+00'),
  (2, 1, 2, 'designer', '2024-01-08 09:00:00+00', 'done', '2024-03-15 17:30:00+00'),
  (3, 1, 5, NULL,       NULL,                     'done', '2024-02-20 12:00:00+00'),
  (4, 2, 1, 'lead',     '2024-02-01 09:00:00+00', 'open', NULL),
  (5, 2, 3, 'engineer', '2024-01-20 09:00:00+00', 'done', '2024-02-10 15:00:00+00'),
  (6, 4, 5, 'analyst',  '2024-01-05 09:00:00+00', 'done', '2024-04-01 11:00:00+00'),
  (7, 5, 2, 'lead',     '2024-05-02 09:00:00+00', 'done', NULL);   -- done, but when?

CREATE TABLE tasks (
  id          integer PRIMARY KEY,
  project_id  integer REFERENCES projects,
  title       text NOT NULL,
  owner_id    integer,                   -- legacy: no foreign key, may point nowhere
  assignee_id integer REFERENCES users
);

INSERT INTO tasks (id, project_id, title, owner_id, assignee_id) VALUES
  (1, 1, 'Welcome e-mail copy',          1,    NULL),
  (2, 1, 'Onboarding flow – Zoë review', 2,    NULL),
  (3, 2, 'Invoice PDF layout',           99,   NULL),   -- owner deleted long ago
  (4, 2, 'VAT rules',                    NULL, NULL),
  (5, 3, 'Loyalty card design',          3,    1),      -- reassigned by hand
  (6, 4, 'Warehouse schema',             5,    NULL),
  (7, 5, 'Search relevance',             42,   NULL);   -- owner never existed here

CREATE TABLE time_entries (
  id               bigint PRIMARY KEY,
  user_id          integer NOT NULL REFERENCES users,
  project_id       integer REFERENCES projects,
  spent_on         date NOT NULL,
  duration_minutes numeric(8,2),          -- legacy
  duration_seconds integer,               -- new
  note             text
);

INSERT INTO time_entries (id, user_id, project_id, spent_on, duration_minutes, duration_seconds, note) VALUES
  (1, 1, 1, '2024-01-10', 90,    NULL, 'Kick-off'),
  (2, 2, 1, '2024-01-11', 45.5,  NULL, 'Wireframes – café flow'),
  (3, 2, 1, '2024-01-12', NULL,  NULL, 'forgot to log time'),
  (4, 3, 2, '2024-01-22', 0.25,  NULL, NULL),
  (5, 5, 4, '2024-01-08', 480,   NULL, '  '),
  (6, 1, 2, '2024-02-02', 30,    1799, 'corrected by hand'),
  (7, 5, 4, '2024-01-09', 7.5,   NULL, 'Standup'),
  (8, 4, NULL, '2024-02-05', NULL, NULL, NULL);

-- The new projects table. Row 2 came over in an earlier sync, before BRAVO had
-- a status.
CREATE TABLE projects_new (
  id          integer PRIMARY KEY,
  code        text NOT NULL,
  name        text NOT NULL,
  status      text,
  customer_id integer REFERENCES customers,
  created_at  timestamptz NOT NULL
);

INSERT INTO projects_new (id, code, name, status, customer_id, created_at) VALUES
  (2, 'BRAVO', 'Bravo billing', NULL, 2, '2024-01-15 09:00:00+00');
