#include "host/chunk_leases.hpp"

#include <spdlog/spdlog.h>

#include "host/database.hpp"
#include "host/ledger.hpp"

namespace host {

namespace {

nlohmann::json json_of(const pqxx::field& field) {
  return field.is_null() ? nlohmann::json() : nlohmann::json::parse(field.c_str());
}

}  // namespace

Params key_params(const nlohmann::json& array) {
  Params key;
  if (!array.is_array()) return key;
  for (const auto& part : array)
    key.push_back(part.is_null() ? Param{} : Param{part.get<std::string>()});
  return key;
}

nlohmann::json key_array(const Params& key) {
  auto array = nlohmann::json::array();
  for (const auto& part : key) array.push_back(part ? nlohmann::json(*part) : nlohmann::json());
  return array;
}

nlohmann::json protected_json(const ProtectedCounts& counts) {
  auto entries = nlohmann::json::array();
  for (const auto& [where, count] : counts) entries.push_back({where.first, where.second, count});
  return entries;
}

ProtectedCounts protected_from_json(const nlohmann::json& entries) {
  ProtectedCounts counts;
  if (!entries.is_array()) return counts;
  for (const auto& entry : entries)
    counts[{entry[0].get<std::string>(), entry[1].get<std::string>()}] += entry[2].get<long long>();
  return counts;
}

ChunkLeases::ChunkLeases(Database& database, Ledger& ledger, std::string run_id,
                         std::string worker_id, long long lease_seconds)
    : m_database(database),
      m_ledger(ledger),
      m_run_id(std::move(run_id)),
      m_worker(std::move(worker_id)),
      m_lease_seconds(lease_seconds) {}

void ChunkLeases::register_worker(const std::string& host_name, long long pid) {
  m_database.exec("INSERT INTO " + m_ledger.table("workers") +
                      " (run_id, worker, host, pid) VALUES ($1, $2, $3, $4::integer) "
                      "ON CONFLICT (run_id, worker) DO UPDATE SET last_seen = clock_timestamp()",
                  {m_run_id, m_worker, host_name, std::to_string(pid)});
}

std::optional<Chunk> ChunkLeases::claim(std::optional<int> other_than) {
  // One statement, so no transaction is left open between claims.
  auto rows = m_database.exec_prepared(
      "WITH claimed AS (UPDATE " + m_ledger.table("chunks") +
          " c SET lease_owner = $2, lease_until = clock_timestamp() + make_interval(secs => $3) "
          "WHERE (c.run_id, c.chunk) = (SELECT run_id, chunk FROM " + m_ledger.table("chunks") +
          " WHERE run_id = $1 AND NOT done AND (lease_owner IS NULL OR lease_owner = $2 OR "
          "lease_until < clock_timestamp()) AND chunk IS DISTINCT FROM $4::integer "
          "ORDER BY chunk LIMIT 1 FOR UPDATE SKIP LOCKED) "
          "RETURNING c.chunk, c.lower_key, c.upper_key, c.after_key, c.batches, c.stats, "
          "c.protected_by_column), "
          "seen AS (UPDATE " + m_ledger.table("workers") +
          " w SET chunk = (SELECT chunk FROM claimed), last_seen = clock_timestamp() "
          "WHERE w.run_id = $1 AND w.worker = $2) "
          "SELECT * FROM claimed",
      {m_run_id, m_worker, std::to_string(m_lease_seconds),
       other_than ? Param{std::to_string(*other_than)} : Param{}});
  if (rows.empty()) return std::nullopt;
  const auto& row = rows[0];
  Chunk chunk;
  chunk.number = row[0].as<int>();
  chunk.lower = key_params(json_of(row[1]));
  chunk.upper = key_params(json_of(row[2]));
  chunk.after = key_params(json_of(row[3]));
  chunk.batches = row[4].as<long long>();
  chunk.stats = RunStats::from_json(json_of(row[5]));
  chunk.protected_by_column = protected_from_json(json_of(row[6]));
  return chunk;
}

Renewal ChunkLeases::renew(Chunk& chunk) {
  // The chunk's progress comes back only when it differs from what the worker
  // knows: every batch would otherwise read two JSON documents it already has.
  auto rows = m_database.exec_prepared(
      "UPDATE " + m_ledger.table("chunks") +
          " c SET lease_until = clock_timestamp() + make_interval(secs => $4) "
          "WHERE run_id = $1 AND chunk = $2::integer AND lease_owner = $3 AND NOT done "
          "RETURNING (SELECT stop_request FROM " + m_ledger.table("runs") +
          " WHERE run_id = $1), nextval('" + m_ledger.table("batch_numbers") + "'), "
          "CASE WHEN c.batches <> $5::bigint THEN jsonb_build_array(c.after_key, c.batches, "
          "c.stats, c.protected_by_column) END",
      {m_run_id, std::to_string(chunk.number), m_worker, std::to_string(m_lease_seconds),
       std::to_string(chunk.batches)});
  Renewal renewal;
  if (rows.empty()) return renewal;
  const auto& row = rows[0];
  renewal.held = true;
  if (!row[0].is_null()) renewal.stop = stop_kind_from(row[0].c_str());
  renewal.batch_number = row[1].as<long long>();
  if (!row[2].is_null()) {
    auto progress = json_of(row[2]);
    chunk.after = key_params(progress[0]);
    chunk.batches = progress[1].get<long long>();
    chunk.stats = RunStats::from_json(progress[2]);
    chunk.protected_by_column = protected_from_json(progress[3]);
    spdlog::warn("worker {} chunk {}: the batch whose COMMIT lost its connection was "
                 "committed; going on after it",
                 m_worker, chunk.number);
  }
  return renewal;
}

Recorded ChunkLeases::record_batch(Chunk& chunk, const Params& after, bool done,
                                   const WorkerBatch& batch) {
  auto recorded = m_database.exec_prepared(
      "WITH progress AS (UPDATE " + m_ledger.table("chunks") +
          " SET after_key = $4::jsonb, done = $5::boolean, batches = batches + 1, "
          "stats = $6::jsonb, protected_by_column = $7::jsonb, "
          "lease_owner = CASE WHEN $5::boolean THEN NULL ELSE lease_owner END, "
          "lease_until = CASE WHEN $5::boolean THEN NULL "
          "ELSE clock_timestamp() + make_interval(secs => $13) END "
          "WHERE run_id = $1 AND chunk = $2::integer AND lease_owner = $3 RETURNING 1), "
          "seen AS (UPDATE " + m_ledger.table("workers") +
          " SET chunk = CASE WHEN $5::boolean THEN $12::integer ELSE $2::integer END, "
          "last_seen = clock_timestamp(), batches = batches + 1, rows_done = rows_done + $8, "
          "retries = retries + $9, throttled_seconds = $10, throttled = $11::boolean, "
          "batch_rows_min = least(batch_rows_min, $8), batch_rows_max = greatest(batch_rows_max, "
          "$8) WHERE run_id = $1 AND worker = $3 AND EXISTS (SELECT 1 FROM progress)) "
          "SELECT count(*), (SELECT stop_request FROM " + m_ledger.table("runs") +
          " WHERE run_id = $1) FROM progress",
      {m_run_id, std::to_string(chunk.number), m_worker, key_array(after).dump(),
       done ? "true" : "false", chunk.stats.to_json().dump(),
       protected_json(chunk.protected_by_column).dump(), std::to_string(batch.rows),
       std::to_string(batch.retries), std::to_string(batch.throttled_seconds),
       batch.throttled ? "true" : "false",
       batch.next_chunk ? Param{std::to_string(*batch.next_chunk)} : Param{},
       std::to_string(m_lease_seconds)});
  Recorded result;
  result.held = recorded[0][0].as<long long>() > 0;
  if (!recorded[0][1].is_null()) result.stop = stop_kind_from(recorded[0][1].c_str());
  if (result.held) {
    chunk.after = after;
    ++chunk.batches;
  }
  return result;
}

void ChunkLeases::mark_throttled() {
  m_database.exec("UPDATE " + m_ledger.table("workers") +
                      " SET throttled = true, last_seen = clock_timestamp() WHERE run_id = $1 "
                      "AND worker = $2",
                  {m_run_id, m_worker});
}

void ChunkLeases::release(const Chunk& chunk) {
  m_database.exec("WITH freed AS (UPDATE " + m_ledger.table("chunks") +
                      " SET lease_owner = NULL, lease_until = NULL WHERE run_id = $1 AND "
                      "chunk = $2::integer AND lease_owner = $3) UPDATE " +
                      m_ledger.table("workers") +
                      " SET chunk = NULL, last_seen = clock_timestamp() WHERE run_id = $1 AND "
                      "worker = $3",
                  {m_run_id, std::to_string(chunk.number), m_worker});
}

bool ChunkLeases::all_done() {
  return m_database
      .exec("SELECT NOT EXISTS (SELECT 1 FROM " + m_ledger.table("chunks") +
                " WHERE run_id = $1 AND NOT done)",
            {m_run_id})[0][0]
      .as<bool>();
}

StopKind ChunkLeases::stop_request() {
  auto rows = m_database.exec(
      "SELECT stop_request FROM " + m_ledger.table("runs") + " WHERE run_id = $1", {m_run_id});
  if (rows.empty() || rows[0][0].is_null()) return StopKind::none;
  return stop_kind_from(rows[0][0].c_str());
}

ChunkTotals chunk_totals(Database& database, Ledger& ledger, const std::string& run_id) {
  ChunkTotals totals;
  auto rows = database.exec(
      "SELECT stats, protected_by_column, rows_estimate, done FROM " + ledger.table("chunks") +
          " WHERE run_id = $1",
      {run_id});
  for (const auto& row : rows) {
    totals.stats += RunStats::from_json(json_of(row[0]));
    for (const auto& [where, count] : protected_from_json(json_of(row[1])))
      totals.protected_by_column[where] += count;
    totals.rows_estimate += row[2].as<long long>();
    ++totals.chunks;
    if (row[3].as<bool>()) ++totals.chunks_done;
  }
  return totals;
}

WorkerTotals worker_totals(Database& database, Ledger& ledger, const std::string& run_id) {
  // The throttle is one per process, and each worker row carries its process's total.
  auto rows = database.exec(
      "SELECT count(*) FILTER (WHERE batches > 0), coalesce(sum(batches), 0), "
      "coalesce(sum(retries), 0), min(batch_rows_min), max(batch_rows_max), "
      "(SELECT coalesce(sum(m), 0) FROM (SELECT max(throttled_seconds) AS m FROM " +
          ledger.table("workers") + " WHERE run_id = $1 GROUP BY host, pid) p) FROM " +
          ledger.table("workers") + " WHERE run_id = $1",
      {run_id});
  WorkerTotals totals;
  const auto& row = rows[0];
  totals.workers = row[0].as<long long>();
  totals.batches = row[1].as<long long>();
  totals.retries = row[2].as<long long>();
  if (!row[3].is_null()) totals.batch_rows_min = row[3].as<long long>();
  if (!row[4].is_null()) totals.batch_rows_max = row[4].as<long long>();
  totals.throttled_seconds = row[5].as<double>();
  return totals;
}

}  // namespace host
