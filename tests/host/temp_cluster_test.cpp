// host/temp_cluster: the durable cluster of the benchmark keeps PostgreSQL's crash-safe
// defaults and takes extra settings; the test clusters trade durability for speed.
#include "host/temp_cluster.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "host/database.hpp"
#include "tests/support/test_support.hpp"

using namespace host;

namespace {

std::string show(Database& db, const std::string& setting) {
  return db.exec("SHOW " + setting)[0][0].c_str();
}

}  // namespace

TEST_CASE("a durable cluster keeps fsync and synchronous_commit on and takes extra settings",
          "[temp_cluster]") {
  TempCluster cluster(ClusterOptions{Durability::on, {"work_mem=8MB"}});
  Database db(cluster.conninfo("postgres"));
  CHECK(show(db, "fsync") == "on");
  CHECK(show(db, "synchronous_commit") == "on");
  CHECK(show(db, "full_page_writes") == "on");
  CHECK(show(db, "work_mem") == "8MB");
}

TEST_CASE("the default cluster is the fast one of the tests", "[temp_cluster]") {
  Database db(testing::fresh_database());
  CHECK(show(db, "fsync") == "off");
  CHECK(show(db, "synchronous_commit") == "off");
}

TEST_CASE("a cluster setting that could inject more options is refused", "[temp_cluster]") {
  CHECK_THROWS_AS(TempCluster(ClusterOptions{Durability::off, {"work_mem=8MB -c fsync=off"}}),
                  std::runtime_error);
}
