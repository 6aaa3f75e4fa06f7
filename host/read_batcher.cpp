#include "host/read_batcher.hpp"

#include <set>

#include "host/catalog.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/ledger.hpp"
#include "host/query_guard.hpp"
#include "host/retry_policy.hpp"
#include "host/sql_text.hpp"
#include "host/tuple_key.hpp"
#include "host/uuid5.hpp"

namespace host {

namespace {

std::string selected_columns(const ReadRequest& request) {
  const auto& table = *request.table;
  if (request.columns.empty()) return column_list(table.column_names(), "t");
  for (const auto& c : request.columns) table.require_column(c);
  return column_list(request.columns, "t");
}

std::string order_clause(const ReadRequest& request) {
  const auto& table = *request.table;
  std::string sql;
  for (const auto& [column, descending] : request.order_by) {
    table.require_column(column);
    sql += (sql.empty() ? "" : ", ") + ("t." + quote_ident(column)) + (descending ? " DESC" : "");
  }
  // Without an order, "first" would depend on the plan: fall back to the key.
  for (const auto& key : table.primary_key)
    sql += (sql.empty() ? "" : ", ") + ("t." + quote_ident(key));
  return sql.empty() ? "" : " ORDER BY " + sql;
}

long long row_limit(const ReadRequest& request) {
  return request.kind == ReadRequest::Kind::first ? 1 : request.limit + 1;
}

// A SQL-string filter is the recipe's own text: it runs alone, read-only.
bool batchable(const ReadRequest& request) { return !request.filter.sql; }

// Same table, columns, order, limit and condition shape: one query serves them all.
std::string shape_of(const ReadRequest& request) {
  std::string shape =
      tuple_key(request.table->qualified_name, std::to_string(static_cast<int>(request.kind)),
                std::to_string(request.limit), std::to_string(request.columns.size()));
  for (const auto& c : request.columns) append_key_part(shape, c);
  append_key_part(shape, std::to_string(request.order_by.size()));
  for (const auto& [c, d] : request.order_by) append_key_part(shape, c + (d ? "-" : "+"));
  append_key_part(shape, std::to_string(request.filter.conditions.size()));
  for (const auto& c : request.filter.conditions)
    append_key_part(shape, c.column + std::to_string(static_cast<int>(c.kind)));
  return shape;
}

// The request's condition values as a tuple (an IN list as its array literal):
// requests of one shape with equal tuples share one answer.
Params values_key(const ReadRequest& request) {
  Params key;
  for (const auto& c : request.filter.conditions) {
    if (c.kind == Condition::Kind::equals) key.push_back(c.values[0]);
    if (c.kind == Condition::Kind::in_list) key.push_back(array_literal(c.values));
  }
  return key;
}

void check_overflow(const ReadRequest& request, ReadAnswer& answer) {
  if (request.kind == ReadRequest::Kind::all &&
      static_cast<long long>(answer.rows.size()) > request.limit) {
    answer.rows.clear();
    answer.error = "read_all(" + request.table->display_name + ") matched more than " +
                   std::to_string(request.limit) + " rows (raise opts.limit, or narrow the filter)";
  }
}

ReadAnswer answer_one(Database& database, const ReadRequest& request) {
  Params params;
  std::string sql = "SELECT " + selected_columns(request) + " FROM " +
                    request.table->qualified_name + " t WHERE " +
                    render_filter(request.filter, *request.table, "t", params) +
                    order_clause(request) + " LIMIT " + std::to_string(row_limit(request));
  ReadAnswer answer;
  if (request.filter.sql && !request.guard)
    throw RecipeError("a where string reached the database unchecked");  // fail closed
  answer.result = std::make_shared<pqxx::result>(
      request.filter.sql ? exec_recipe_sql(database, *request.guard, sql, params, "where")
                         : database.exec(sql, params));
  for (int i = 0; i < static_cast<int>(answer.result->size()); ++i) answer.rows.push_back(i);
  check_overflow(request, answer);
  return answer;
}

// One query for requests of one shape: a lateral subquery per distinct parameter tuple.
void answer_group(Database& database, const std::vector<const ReadRequest*>& requests,
                  const std::vector<size_t>& positions, std::vector<ReadAnswer>& answers) {
  const ReadRequest& first = *requests[positions[0]];
  const TableInfo& table = *first.table;
  std::map<Params, size_t> tuple_of;
  std::vector<const ReadRequest*> tuples;
  std::vector<size_t> tuple_for_position;
  for (size_t p : positions) {
    auto [it, added] = tuple_of.emplace(values_key(*requests[p]), tuples.size());
    if (added) tuples.push_back(requests[p]);
    tuple_for_position.push_back(it->second);
  }
  Params params;
  std::string unnest_args, v_names, predicate;
  size_t equals_index = 0;
  for (size_t c = 0; c < first.filter.conditions.size(); ++c) {
    const auto& condition = first.filter.conditions[c];
    const Column& column = table.require_column(condition.column);
    std::string target = "t." + quote_ident(column.name);
    std::string clause;
    if (condition.kind == Condition::Kind::equals) {
      Params values;
      for (const auto* tuple : tuples) values.push_back(tuple->filter.conditions[c].values[0]);
      params.push_back(array_literal(values));
      std::string name = "p" + std::to_string(equals_index++);
      unnest_args += "$" + std::to_string(params.size()) + "::text[], ";
      v_names += name + ", ";
      clause = target + " = v." + name + "::" + column.cast_type;
    } else if (condition.kind == Condition::Kind::in_list) {
      // Each request's list travels as one element: the text of an array literal.
      Params lists;
      for (const auto* tuple : tuples)
        lists.push_back(array_literal(tuple->filter.conditions[c].values));
      params.push_back(array_literal(lists));
      std::string name = "p" + std::to_string(equals_index++);
      unnest_args += "$" + std::to_string(params.size()) + "::text[], ";
      v_names += name + ", ";
      clause = target + " = ANY(v." + name + "::" + column.cast_type + "[])";
    } else {
      clause = empty_condition(column, target, EmptyRule::blank);
      if (condition.kind == Condition::Kind::not_empty) clause = "NOT " + clause;
    }
    predicate += (predicate.empty() ? "" : " AND ") + clause;
  }
  if (predicate.empty()) predicate = "TRUE";
  // A dummy array keeps unnest() well-formed when there are no equality conditions.
  params.push_back(array_literal(Params(tuples.size(), Param{"x"})));
  unnest_args += "$" + std::to_string(params.size()) + "::text[]";
  v_names += "unused";
  std::string sql = "SELECT v.ord, r.* FROM unnest(" + unnest_args + ") WITH ORDINALITY AS v(" +
                    v_names + ", ord) CROSS JOIN LATERAL (SELECT " + selected_columns(first) +
                    " FROM " + table.qualified_name + " t WHERE " + predicate +
                    order_clause(first) + " LIMIT " + std::to_string(row_limit(first)) +
                    ") r ORDER BY v.ord";
  auto result = std::make_shared<pqxx::result>(database.exec(sql, params));
  std::vector<std::vector<int>> rows_of_tuple(tuples.size());
  for (int i = 0; i < static_cast<int>(result->size()); ++i)
    rows_of_tuple[(*result)[i][0].as<size_t>() - 1].push_back(i);
  for (size_t i = 0; i < positions.size(); ++i) {
    ReadAnswer& answer = answers[positions[i]];
    answer.result = result;
    answer.column_offset = 1;
    answer.rows = rows_of_tuple[tuple_for_position[i]];
    check_overflow(*requests[positions[i]], answer);
  }
}

// Called in a handler of a read's DatabaseError. A lock timeout, a deadlock, a
// statement timeout or a lost connection says nothing about the read: it fails the
// batch, which is tried again (RECIPE_API.md section 10), as a single read's does
// (bindings/primitives.cpp). Only what the read asked for is the recipe's to see.
void rethrow_unless_about_the_read() {
  if (classify_failure(std::current_exception()) != Failure::fatal) throw;
}

}  // namespace

std::vector<ReadAnswer> answer_reads(Database& database,
                                     const std::vector<const ReadRequest*>& requests) {
  std::vector<ReadAnswer> answers(requests.size());
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (batchable(*requests[i]))
      groups[shape_of(*requests[i])].push_back(i);
    else  // the same SQL text from many rows is asked once
      groups[tuple_key("sql", shape_of(*requests[i]), *requests[i]->filter.sql)].push_back(i);
  }
  for (const auto& [shape, positions] : groups) {
    auto run_singly = [&](const std::vector<size_t>& which) {
      for (size_t p : which) {
        database.savepoint("host_read");
        try {
          answers[p] = answer_one(database, *requests[p]);
          database.release("host_read");
        } catch (const DatabaseError& error) {
          database.rollback_to("host_read");
          database.release("host_read");
          rethrow_unless_about_the_read();
          answers[p].error = error.what();
        } catch (const RecipeError& error) {
          database.release("host_read");
          answers[p].error = error.what();
        }
      }
    };
    if (!batchable(*requests[positions[0]])) {
      run_singly({positions[0]});
      for (size_t p : positions) answers[p] = answers[positions[0]];
      continue;
    }
    if (positions.size() == 1) {
      run_singly(positions);
      continue;
    }
    database.savepoint("host_read_group");
    try {
      answer_group(database, requests, positions, answers);
      database.release("host_read_group");
    } catch (const DatabaseError&) {
      database.rollback_to("host_read_group");
      database.release("host_read_group");
      rethrow_unless_about_the_read();
      // One bad value spoils the group: find it by asking one by one.
      run_singly(positions);
    } catch (const RecipeError& error) {
      database.release("host_read_group");
      for (size_t p : positions) answers[p].error = error.what();
    }
  }
  return answers;
}

std::map<std::string, std::string> resolve_ids(Database& database, Ledger& ledger,
                                               const std::string& run_id, const std::string& entity,
                                               const std::vector<std::string>& legacy_ids,
                                               long long& created,
                                               std::map<std::string, std::string>* conflicts) {
  std::string map_table = ledger.id_map_table(entity);
  std::map<std::string, std::string> found;
  std::set<std::string> distinct(legacy_ids.begin(), legacy_ids.end());
  std::vector<std::string> unique(distinct.begin(), distinct.end());
  auto look_up = [&](const std::vector<std::string>& ids) {
    auto rows = database.exec(
        "SELECT legacy_id, uuid::text FROM " + map_table + " WHERE legacy_id = ANY($1::text[])",
        {array_literal(Params(ids.begin(), ids.end()))});
    for (const auto& row : rows) found[row[0].c_str()] = row[1].c_str();
  };
  look_up(unique);
  // A UUID legacy id stored in another spelling (a map filled by hand or by an
  // older version, "A0EE..."): found through the uuid column, which is indexed.
  std::vector<std::string> uuid_ids;
  for (const auto& legacy : unique)
    if (!found.count(legacy) && canonical_uuid(legacy)) uuid_ids.push_back(legacy);
  if (!uuid_ids.empty()) {
    auto rows = database.exec("SELECT lower(legacy_id), uuid::text FROM " + map_table +
                                  " WHERE uuid = ANY($1::uuid[]) AND lower(legacy_id) = uuid::text",
                              {array_literal(Params(uuid_ids.begin(), uuid_ids.end()))});
    for (const auto& row : rows) found[row[0].c_str()] = row[1].c_str();
  }
  Params missing, fresh;
  std::vector<std::string> missing_ids;
  for (const auto& legacy : unique) {
    if (found.count(legacy)) continue;
    missing.push_back(legacy);
    missing_ids.push_back(legacy);
    auto canonical = canonical_uuid(legacy);
    fresh.push_back(canonical ? *canonical : uuid_v5(entity, legacy));
  }
  if (missing.empty()) return found;
  auto inserted = database.exec(
      "INSERT INTO " + map_table +
          " (legacy_id, uuid, run_id) SELECT l, u::uuid, $3::uuid FROM unnest($1::text[], "
          "$2::text[]) AS x(l, u) ON CONFLICT DO NOTHING RETURNING legacy_id, uuid::text",
      {array_literal(missing), array_literal(fresh), run_id});
  created += static_cast<long long>(inserted.size());
  for (const auto& row : inserted) found[row[0].c_str()] = row[1].c_str();
  if (found.size() < unique.size()) {
    look_up(missing_ids);  // lost a race to another writer: its mapping wins
    for (size_t i = 0; i < missing_ids.size(); ++i) {
      if (found.count(missing_ids[i])) continue;
      std::string problem = "map_id('" + entity + "', '" + missing_ids[i] + "'): its UUID " +
                            *fresh[i] + " is already mapped to another legacy id in " + map_table;
      if (!conflicts) throw RecipeError(problem);
      (*conflicts)[missing_ids[i]] = problem;
    }
  }
  return found;
}

}  // namespace host
