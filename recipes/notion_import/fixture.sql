-- notion_import fixture: the target tables of a Notion workspace import. Rows are
-- keyed by the Notion page id (a UUID), so a re-import finds the rows it made.
-- One sub-app was typed in by hand before the import, with the page id copied
-- from Notion: the import must keep what the person wrote (name, owner) and
-- only fill what is still empty (URL, launch date, the blank status).

CREATE TABLE sub_apps (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  owner       text,
  launched_on date,
  status      text,
  notion_url  text
);

CREATE TABLE projects (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  sub_app_id  uuid REFERENCES sub_apps,
  status      text,
  notion_url  text
);

CREATE TABLE phases (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  project_id  uuid REFERENCES projects,   -- set when the phase belongs to exactly one project
  status      text,
  starts_on   date,
  notion_url  text
);

-- Every project a phase is linked to (Notion relations are many-to-many).
CREATE TABLE phase_projects (
  phase_id    uuid NOT NULL REFERENCES phases DEFERRABLE INITIALLY DEFERRED,
  project_id  uuid NOT NULL REFERENCES projects DEFERRABLE INITIALLY DEFERRED,
  PRIMARY KEY (phase_id, project_id)
);

INSERT INTO sub_apps (id, name, owner, launched_on, status, notion_url) VALUES
  ('5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d62', 'Billing Portal', 'Marta Nowak', NULL, '  ', NULL);
