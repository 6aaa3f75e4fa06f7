-- safe_fill fixture: three tables whose backfill targets people have already
-- filled in. Every target cell holds a value, some of them odd on purpose (a
-- trailing space, non-ASCII text, a lower-case code): all of them are values, and
-- a safe backfill must leave every one alone. Non-target columns carry the usual
-- mess (NULLs, blanks, legacy ids) and are never looked at.

CREATE TABLE projects (
  id         integer PRIMARY KEY,
  legacy_id  integer UNIQUE,            -- id in the old tracker; NULL for new projects
  code       text NOT NULL UNIQUE,
  name       text NOT NULL,
  status     text,                      -- target: default 'planned'
  currency   text,                      -- target: default 'EUR'
  created_at timestamptz NOT NULL
);

INSERT INTO projects (id, legacy_id, code, name, status, currency, created_at) VALUES
  (1, 1001, 'ALPHA',   'Alpha onboarding',       'active',  'EUR', '2024-01-08 09:00:00+00'),
  (2, 1002, 'BRAVO',   'Café Zoë rebrand',       'on hold', 'CHF', '2024-01-15 10:30:00+00'),
  (3, NULL, 'CHARLIE', 'Charlie data platform',  'Done ',   'USD', '2024-02-01 08:00:00+00'),
  (4, 1004, 'DELTA',   'Δelta – Ünïcode audit',  'planned', 'eur', '2024-02-20 14:45:00+00'),
  (5, 1005, 'ECHO',    '  ',                     'active',  'GBP', '2024-03-04 07:15:00+00');

CREATE TABLE phases (
  id         integer PRIMARY KEY,
  project_id integer REFERENCES projects,
  name       text,
  status     text,                      -- target: default 'Active'
  sort_order integer
);

INSERT INTO phases (id, project_id, name, status, sort_order) VALUES
  (1, 1,    'Discovery',            'Done',        1),
  (2, 1,    'Build',                'Active',      2),
  (3, 2,    'Café Zoë menu',        'Blocked',     1),
  (4, NULL, 'Orphaned from legacy', 'Archived',    NULL),
  (5, 3,    NULL,                   'Not started', 1),
  (6, 4,    '  ',                   'Active ',     1);

CREATE TABLE users (
  id           integer PRIMARY KEY,
  legacy_id    integer UNIQUE,
  email        text NOT NULL,
  display_name text,
  timezone     text,                    -- target: default 'UTC'
  locale       text                     -- target: default 'en'
);

INSERT INTO users (id, legacy_id, email, display_name, timezone, locale) VALUES
  (1, 501,  'ana@example.com',   'Ana Lima',     'America/Sao_Paulo', 'pt-BR'),
  (2, 502,  'zoe@example.com',   'Zoë Çelik',    'Europe/Istanbul',   'tr'),
  (3, 503,  'jose@example.com',  'José Álvarez', 'Europe/Madrid',     'es'),
  (4, NULL, 'bot@example.com',   NULL,           'UTC',               'en'),
  (5, 505,  'mei@example.com',   '王美',          'Asia/Shanghai',     'zh-Hans');
