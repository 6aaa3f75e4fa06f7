#include "host/ledger.hpp"

#include <algorithm>
#include <cstdlib>

#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/sql_text.hpp"

namespace host {

namespace {

constexpr int k_schema_version = 4;

// Migrations by target version; each runs once, in order, under an advisory lock.
const char* const k_migrations[] = {
    // 1: the first shape. Keys, old and new values are kept as arrays, one ledger
    // row per batch and column, written in the same statement as the change.
    R"(
CREATE TABLE IF NOT EXISTS @.runs (
  run_id uuid PRIMARY KEY,
  recipe text NOT NULL,
  recipe_path text NOT NULL,
  recipe_hash text NOT NULL,
  recipe_version text,
  mode text NOT NULL,
  commit_mode text NOT NULL,
  status text NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  checkpoint jsonb,
  stats jsonb,
  report jsonb,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  reverted_at timestamptz,
  revert_report jsonb
);
CREATE TABLE IF NOT EXISTS @.changes (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  seq bigint NOT NULL,
  batch integer NOT NULL,
  op text NOT NULL CHECK (op IN ('update', 'insert')),
  table_name text NOT NULL,
  column_name text,
  key_columns text[] NOT NULL,
  keys jsonb NOT NULL,
  old_values text[],
  new_values text[],
  row_values jsonb,
  confidence text,
  reason text,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS @.audit (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  seq bigint NOT NULL,
  event text NOT NULL,
  data jsonb,
  row_key jsonb,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS @.review (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  seq bigint NOT NULL,
  table_name text NOT NULL,
  row_key jsonb,
  column_name text,
  value jsonb,
  confidence text,
  reason text,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS @.failed_rows (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  seq bigint NOT NULL,
  row_key jsonb,
  error text NOT NULL,
  PRIMARY KEY (run_id, seq)
);
)",
    // 2: a change names its table schema-qualified and by OID, so that revert
    // never resolves a bare name under somebody else's search_path, and notices a
    // table dropped and made again under the same name.
    R"(
ALTER TABLE @.changes ADD COLUMN IF NOT EXISTS qualified_table text;
ALTER TABLE @.changes ADD COLUMN IF NOT EXISTS table_oid oid;
)",
    // 3: a batch run is shared by workers of any number of processes. Its key space
    // is split into chunks that workers lease; a chunk's progress and counters live
    // in its own row, so that workers never contend on the run's row. Stop requests
    // (host pause, host cancel) reach every process through the run's row.
    R"(
ALTER TABLE @.runs ADD COLUMN IF NOT EXISTS stop_request text;
CREATE TABLE IF NOT EXISTS @.chunks (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  chunk integer NOT NULL,
  lower_key jsonb,
  upper_key jsonb NOT NULL,
  after_key jsonb,
  rows_estimate bigint NOT NULL,
  done boolean NOT NULL DEFAULT false,
  lease_owner text,
  lease_until timestamptz,
  batches integer NOT NULL DEFAULT 0,
  stats jsonb NOT NULL DEFAULT '{}',
  protected_by_column jsonb NOT NULL DEFAULT '[]',
  PRIMARY KEY (run_id, chunk)
);
CREATE TABLE IF NOT EXISTS @.workers (
  run_id uuid NOT NULL REFERENCES @.runs ON DELETE CASCADE,
  worker text NOT NULL,
  host text NOT NULL,
  pid integer NOT NULL,
  chunk integer,
  last_seen timestamptz NOT NULL DEFAULT clock_timestamp(),
  batches bigint NOT NULL DEFAULT 0,
  rows_done bigint NOT NULL DEFAULT 0,
  retries bigint NOT NULL DEFAULT 0,
  throttled_seconds double precision NOT NULL DEFAULT 0,
  throttled boolean NOT NULL DEFAULT false,
  batch_rows_min bigint,
  batch_rows_max bigint,
  PRIMARY KEY (run_id, worker)
);
CREATE SEQUENCE IF NOT EXISTS @.batch_numbers;
)",
    // 4: a batch's arrays of keys and values are compressed with lz4 where the
    // server has it: it costs a fraction of the default pglz's time, in the
    // statement that writes the batch.
    R"(
DO $host$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
             AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE @.changes ALTER COLUMN keys SET COMPRESSION lz4,
      ALTER COLUMN old_values SET COMPRESSION lz4, ALTER COLUMN new_values SET COMPRESSION lz4,
      ALTER COLUMN row_values SET COMPRESSION lz4;
  END IF;
END $host$;
)",
};

std::string with_schema(std::string sql, const std::string& schema) {
  for (size_t at = sql.find('@'); at != std::string::npos; at = sql.find('@', at + schema.size()))
    sql.replace(at, 1, schema);
  return sql;
}

std::string text(const pqxx::field& field) { return field.is_null() ? "" : field.c_str(); }

nlohmann::json json_field(const pqxx::field& field) {
  return field.is_null() ? nlohmann::json(nullptr) : nlohmann::json::parse(field.c_str());
}

RunRecord run_from_row(const pqxx::row& row) {
  RunRecord run;
  run.run_id = text(row[0]);
  run.recipe = text(row[1]);
  run.recipe_path = text(row[2]);
  run.recipe_hash = text(row[3]);
  run.recipe_version = text(row[4]);
  run.mode = text(row[5]);
  run.commit_mode = text(row[6]);
  run.status = text(row[7]);
  run.options = json_field(row[8]);
  run.checkpoint = json_field(row[9]);
  run.stats = json_field(row[10]);
  run.report = json_field(row[11]);
  run.started_at = text(row[12]);
  run.finished_at = text(row[13]);
  run.reverted_at = text(row[14]);
  run.last_sequence = row[15].as<long long>();
  return run;
}

}  // namespace

Ledger::Ledger(Database& database, std::string schema)
    : m_database(database), m_schema(schema.empty() ? default_schema() : std::move(schema)) {
  if (!is_simple_name(m_schema))
    throw UsageError("ledger schema name must match [a-z0-9_]+: '" + m_schema + "'");
}

std::string Ledger::default_schema() {
  const char* env = std::getenv("HOST_LEDGER_SCHEMA");
  return env && *env ? env : "host_ledger";
}

std::string Ledger::table(const std::string& name) const {
  return quote_ident(m_schema) + "." + quote_ident(name);
}

bool Ledger::exists() {
  return !m_database
              .exec(
                  "SELECT 1 FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
                  "WHERE n.nspname = $1 AND c.relname = 'schema_version'",
                  {m_schema})
              .empty();
}

void Ledger::ensure_schema() {
  m_database.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {"host ledger " + m_schema});
  m_database.exec("CREATE SCHEMA IF NOT EXISTS " + quote_ident(m_schema) +
                  "; CREATE TABLE IF NOT EXISTS " + table("schema_version") +
                  " (version integer NOT NULL)");
  auto current =
      m_database.exec("SELECT coalesce(max(version), 0) FROM " + table("schema_version"));
  int version = current[0][0].as<int>();
  if (version > k_schema_version)
    throw UsageError("the ledger schema '" + m_schema + "' is at version " +
                     std::to_string(version) + ", newer than this host (" +
                     std::to_string(k_schema_version) + "); upgrade host");
  for (int next = version + 1; next <= k_schema_version; ++next) {
    m_database.exec(with_schema(k_migrations[next - 1], quote_ident(m_schema)));
    m_database.exec("DELETE FROM " + table("schema_version") + "; INSERT INTO " +
                    table("schema_version") + " VALUES (" + std::to_string(next) + ")");
  }
}

void Ledger::insert_run(const RunRecord& run) {
  m_database.exec(
      "INSERT INTO " + table("runs") +
          " (run_id, recipe, recipe_path, recipe_hash, recipe_version, mode, "
          "commit_mode, status, options, checkpoint, stats) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb)",
      {run.run_id, run.recipe, run.recipe_path, run.recipe_hash,
       run.recipe_version.empty() ? Param{} : Param{run.recipe_version}, run.mode, run.commit_mode,
       run.status, run.options.dump(), run.checkpoint.dump(), run.stats.dump()});
}

void Ledger::update_progress(const std::string& run_id, const nlohmann::json& checkpoint,
                             const nlohmann::json& stats) {
  m_database.exec("UPDATE " + table("runs") +
                      " SET checkpoint = $2::jsonb, stats = $3::jsonb WHERE run_id = $1",
                  {run_id, checkpoint.dump(), stats.dump()});
}

void Ledger::finish_run(const std::string& run_id, const std::string& status,
                        const nlohmann::json& stats, const nlohmann::json& report) {
  m_database.exec("UPDATE " + table("runs") +
                      " SET status = $2, stats = $3::jsonb, report = $4::jsonb, "
                      "finished_at = clock_timestamp() WHERE run_id = $1",
                  {run_id, status, stats.dump(), report.dump()});
}

static const char* const k_run_columns =
    "r.run_id::text, r.recipe, r.recipe_path, r.recipe_hash, r.recipe_version, r.mode, "
    "r.commit_mode, r.status, r.options, r.checkpoint, r.stats, r.report, "
    "to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "to_char(r.reverted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ";

std::optional<RunRecord> Ledger::find_run(const std::string& run_id) {
  if (!exists()) return std::nullopt;
  auto rows = m_database.exec(
      std::string("SELECT ") + k_run_columns + "greatest((SELECT coalesce(max(seq), 0) FROM " +
          table("changes") + " WHERE run_id = r.run_id), (SELECT coalesce(max(seq), 0) FROM " +
          table("audit") + " WHERE run_id = r.run_id), (SELECT coalesce(max(seq), 0) FROM " +
          table("review") + " WHERE run_id = r.run_id), (SELECT coalesce(max(seq), 0) FROM " +
          table("failed_rows") + " WHERE run_id = r.run_id)) FROM " + table("runs") +
          " r WHERE r.run_id::text = lower($1)",
      {run_id});
  if (rows.empty()) return std::nullopt;
  return run_from_row(rows[0]);
}

std::vector<RunRecord> Ledger::list_runs() {
  std::vector<RunRecord> runs;
  if (!exists()) return runs;
  auto rows = m_database.exec(std::string("SELECT ") + k_run_columns + "0 FROM " + table("runs") +
                              " r ORDER BY r.started_at, r.run_id");
  for (const auto& row : rows) runs.push_back(run_from_row(row));
  return runs;
}

void Ledger::mark_reverted(const std::string& run_id, const nlohmann::json& revert_report) {
  m_database.exec("UPDATE " + table("runs") +
                      " SET reverted_at = clock_timestamp(), revert_report = $2::jsonb "
                      "WHERE run_id = $1",
                  {run_id, revert_report.dump()});
}

void Ledger::record_reviews(const std::string& run_id, long long& sequence,
                            const std::vector<ReviewItem>& items) {
  if (items.empty()) return;
  auto array = nlohmann::json::array();
  for (const auto& item : items)
    array.push_back({{"table", item.table},
                     {"key", item.key},
                     {"column", item.column},
                     {"value", item.value},
                     {"confidence", item.confidence},
                     {"reason", item.reason}});
  m_database.exec("INSERT INTO " + table("review") +
                      " (run_id, seq, table_name, row_key, column_name, value, confidence, reason) "
                      "SELECT $1, $2::bigint + i, e->>'table', e->'key', e->>'column', e->'value', "
                      "e->>'confidence', e->>'reason' "
                      "FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(e, i)",
                  {run_id, std::to_string(sequence), array.dump()});
  sequence += static_cast<long long>(items.size());
}

void Ledger::record_audit(const std::string& run_id, long long& sequence,
                          const std::vector<AuditEvent>& events) {
  if (events.empty()) return;
  auto array = nlohmann::json::array();
  for (const auto& event : events)
    array.push_back({{"event", event.event}, {"data", event.data}, {"key", event.row_key}});
  m_database.exec("INSERT INTO " + table("audit") +
                      " (run_id, seq, event, data, row_key) "
                      "SELECT $1, $2::bigint + i, e->>'event', e->'data', e->'key' "
                      "FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(e, i)",
                  {run_id, std::to_string(sequence), array.dump()});
  sequence += static_cast<long long>(events.size());
}

long long Ledger::next_batch_number() {
  return m_database.exec_prepared("SELECT nextval('" + table("batch_numbers") + "')", {})[0][0]
      .as<long long>();
}

void Ledger::record_failed_rows(const std::string& run_id, long long& sequence,
                                const std::vector<FailedRow>& rows) {
  if (rows.empty()) return;
  auto array = nlohmann::json::array();
  for (const auto& row : rows) array.push_back({{"key", row.key}, {"error", row.error}});
  m_database.exec("INSERT INTO " + table("failed_rows") +
                      " (run_id, seq, row_key, error) "
                      "SELECT $1, $2::bigint + i, e->'key', e->>'error' "
                      "FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(e, i)",
                  {run_id, std::to_string(sequence), array.dump()});
  sequence += static_cast<long long>(rows.size());
}

nlohmann::json Ledger::change_counts(const std::string& run_id) {
  auto rows = m_database.exec(
      "SELECT table_name, column_name, sum(jsonb_array_length(keys))::bigint FROM " +
          table("changes") + " WHERE run_id = $1 AND op = 'update' GROUP BY 1, 2 ORDER BY 1, 2",
      {run_id});
  auto changes = nlohmann::json::array();
  for (const auto& row : rows)
    changes.push_back(
        {{"table", row[0].c_str()}, {"column", row[1].c_str()}, {"count", row[2].as<long long>()}});
  return changes;
}

nlohmann::json Ledger::insert_counts(const std::string& run_id) {
  auto rows = m_database.exec("SELECT table_name, sum(jsonb_array_length(keys))::bigint FROM " +
                                  table("changes") +
                                  " WHERE run_id = $1 AND op = 'insert' GROUP BY 1 ORDER BY 1",
                              {run_id});
  auto inserts = nlohmann::json::array();
  for (const auto& row : rows)
    inserts.push_back({{"table", row[0].c_str()}, {"count", row[1].as<long long>()}});
  return inserts;
}

nlohmann::json Ledger::review_counts(const std::string& run_id) {
  auto rows = m_database.exec("SELECT table_name, column_name, count(*) FROM " + table("review") +
                                  " WHERE run_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
                              {run_id});
  auto counts = nlohmann::json::array();
  for (const auto& row : rows)
    counts.push_back(
        {{"table", text(row[0])},
         {"column", row[1].is_null() ? nlohmann::json(nullptr) : nlohmann::json(text(row[1]))},
         {"count", row[2].as<long long>()}});
  return counts;
}

nlohmann::json Ledger::reviews(const std::string& run_id, long long limit) {
  auto rows = m_database.exec(
      "SELECT table_name, row_key::text, column_name, value::text, confidence, reason FROM " +
          table("review") + " WHERE run_id = $1 ORDER BY seq LIMIT $2::bigint",
      {run_id, std::to_string(limit)});
  auto items = nlohmann::json::array();
  for (const auto& row : rows)
    items.push_back(
        {{"table", text(row[0])},
         {"key", json_field(row[1])},
         {"column", row[2].is_null() ? nlohmann::json(nullptr) : nlohmann::json(text(row[2]))},
         {"value", json_field(row[3])},
         {"confidence", text(row[4])},
         {"reason", text(row[5])}});
  return items;
}

nlohmann::json Ledger::audit_events(const std::string& run_id, long long limit) {
  auto rows = m_database.exec("SELECT event, data::text, row_key::text FROM " + table("audit") +
                                  " WHERE run_id = $1 ORDER BY seq LIMIT $2::bigint",
                              {run_id, std::to_string(limit)});
  auto events = nlohmann::json::array();
  for (const auto& row : rows)
    events.push_back(
        {{"event", text(row[0])}, {"data", json_field(row[1])}, {"key", json_field(row[2])}});
  return events;
}

nlohmann::json Ledger::failed_rows(const std::string& run_id, long long limit) {
  auto rows = m_database.exec("SELECT row_key::text, error FROM " + table("failed_rows") +
                                  " WHERE run_id = $1 ORDER BY seq LIMIT $2::bigint",
                              {run_id, std::to_string(limit)});
  auto failed = nlohmann::json::array();
  for (const auto& row : rows)
    failed.push_back({{"key", json_field(row[0])}, {"error", text(row[1])}});
  return failed;
}

std::string Ledger::id_map_table(const std::string& entity) {
  std::string name = table(entity + "_id_map");
  if (std::find(m_known_maps.begin(), m_known_maps.end(), entity) != m_known_maps.end())
    return name;
  m_database.exec("CREATE TABLE IF NOT EXISTS " + name +
                  " (legacy_id text NOT NULL UNIQUE, uuid uuid NOT NULL UNIQUE, "
                  "run_id uuid, created_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  // A map made by hand, with only (legacy_id, uuid), gets the columns the host
  // keeps. Only when missing: ALTER TABLE would lock the map for the whole run.
  auto missing = m_database.exec(
      "SELECT c FROM unnest(ARRAY['run_id', 'created_at']) c WHERE NOT EXISTS (SELECT 1 FROM "
      "pg_attribute WHERE attrelid = $1::regclass AND attname = c AND NOT attisdropped)",
      {name});
  for (const auto& row : missing)
    m_database.exec(
        "ALTER TABLE " + name + " ADD COLUMN IF NOT EXISTS " +
        (std::string(row[0].c_str()) == "run_id"
             ? std::string("run_id uuid")
             : std::string("created_at timestamptz NOT NULL DEFAULT clock_timestamp()")));
  m_known_maps.push_back(entity);
  return name;
}

}  // namespace host
