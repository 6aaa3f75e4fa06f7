// host/conninfo: passwords never appear in what the host prints.
#include "host/conninfo.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace host;

namespace {

// Unsets an environment variable for the scope of a test, restoring it afterwards.
class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : m_name(name) {
    if (const char* old = std::getenv(name)) m_old = old;
    unsetenv(name);
  }
  ~EnvGuard() {
    if (m_old)
      setenv(m_name, m_old->c_str(), 1);
    else
      unsetenv(m_name);
  }

 private:
  const char* m_name;
  std::optional<std::string> m_old;
};

}  // namespace

TEST_CASE("redact_conninfo hides the password of a URL", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  CHECK(redact_conninfo("postgresql://alice:s3cret@db.example:5432/app") ==
        "postgresql://alice:***@db.example:5432/app");
  CHECK(redact_conninfo("postgres://bob:p%40ss@localhost/x?sslmode=require") ==
        "postgres://bob:***@localhost/x?sslmode=require");
  std::string redacted = redact_conninfo("postgresql://u:hunter2hunter2@h/db");
  CHECK(redacted.find("hunter2") == std::string::npos);
}

TEST_CASE("redact_conninfo hides a password given as a URL query parameter", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  std::string redacted =
      redact_conninfo("postgresql:///t14?host=/tmp/probe&port=5499&user=pw&password=SecretQ");
  CHECK(redacted.find("SecretQ") == std::string::npos);
  CHECK(redacted.find("user=pw") != std::string::npos);
  CHECK(redact_conninfo("postgresql://h/db?password=first&sslmode=require").find("first") ==
        std::string::npos);
  // Both places at once (libpq uses the query one), an empty user-info password, and a
  // user name holding '@' after a port.
  std::string both = redact_conninfo("postgresql://u:a1b2@h/db?password=second");
  CHECK(both.find("a1b2") == std::string::npos);
  CHECK(both.find("second") == std::string::npos);
  CHECK(redact_conninfo("postgresql://u:@h/db?password=s3cret").find("s3cret") ==
        std::string::npos);
  CHECK(redact_conninfo("postgresql://h:5432/db?user=svc@tenant&password=s3cret").find("s3cret") ==
        std::string::npos);
}

TEST_CASE("redact_conninfo hides key=value passwords, quoted or not", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  std::string plain = redact_conninfo("host=localhost user=alice password=s3cret dbname=app");
  CHECK(plain.find("s3cret") == std::string::npos);
  CHECK(plain.find("host=localhost") != std::string::npos);
  CHECK(plain.find("dbname=app") != std::string::npos);

  std::string spaced = redact_conninfo("host=h password = 'pa ss\\'word' dbname=app");
  CHECK(spaced.find("pa ss") == std::string::npos);
  CHECK(spaced.find("dbname=app") != std::string::npos);

  std::string first = redact_conninfo("password=topsecret host=h");
  CHECK(first.find("topsecret") == std::string::npos);
}

TEST_CASE("redact_conninfo leaves a conninfo without password unchanged", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  CHECK(redact_conninfo("host=/tmp port=5432 dbname=app") == "host=/tmp port=5432 dbname=app");
  CHECK(redact_conninfo("postgresql://alice@db/app") == "postgresql://alice@db/app");
  CHECK(redact_conninfo("") == "");
}

TEST_CASE("scrub_secrets removes the password from any message", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  std::string conninfo = "postgresql://alice:s3cretpw@db/app";
  std::string message = "connection to postgresql://alice:s3cretpw@db/app failed: s3cretpw bad";
  std::string scrubbed = scrub_secrets(message, conninfo);
  CHECK(scrubbed.find("s3cretpw") == std::string::npos);
  CHECK(scrubbed.find("failed") != std::string::npos);
  CHECK(scrub_secrets("password authentication failed for x9pw-secret",
                      "host=h password=x9pw-secret") == "password authentication failed for ***");
}

TEST_CASE("PGPASSWORD is scrubbed as well", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  setenv("PGPASSWORD", "env-secret-77", 1);
  CHECK(scrub_secrets("oops env-secret-77 leaked", "host=h dbname=x").find("env-secret-77") ==
        std::string::npos);
}

TEST_CASE("resolve_conninfo prefers --db, then DATABASE_URL", "[unit][conninfo]") {
  EnvGuard url("DATABASE_URL");
  CHECK(resolve_conninfo(std::string("dbname=a")) == "dbname=a");
  CHECK(resolve_conninfo(std::nullopt) == "");
  setenv("DATABASE_URL", "dbname=b", 1);
  CHECK(resolve_conninfo(std::nullopt) == "dbname=b");
  CHECK(resolve_conninfo(std::string("dbname=a")) == "dbname=a");
}

TEST_CASE("redact_conninfo masks the whole value as libpq reads it", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  // A backslash-escaped space belongs to the value.
  std::string escaped = "host=h password=Wrong\\ Pass4 dbname=app";
  CHECK(redact_conninfo(escaped) == "host=h password=*** dbname=app");
  CHECK(scrub_secrets("password for 'Wrong Pass4' rejected", escaped) ==
        "password for '***' rejected");

  CHECK(redact_conninfo("password='Wrong Pass4' host=h") == "password=*** host=h");
  CHECK(redact_conninfo("host=h password = x9secret dbname=app") ==
        "host=h password = *** dbname=app");
  CHECK(redact_conninfo("host=h password= 'it\\'s a secret'") == "host=h password= ***");
  CHECK(scrub_secrets("it's a secret", "host=h password= 'it\\'s a secret'") == "***");
  CHECK(redact_conninfo("host=h\tpassword=tab\\\tsecret") == "host=h\tpassword=***");
  // The client key's passphrase is a secret as well.
  CHECK(redact_conninfo("host=h sslpassword=keypass1") == "host=h sslpassword=***");
  // A malformed conninfo (libpq refuses it) still has its password found.
  CHECK(redact_conninfo("host password=s3cret") == "host password=***");
  // Percent-encoded URL passwords are scrubbed in both spellings.
  CHECK(scrub_secrets("bad password p@ss!", "postgresql://u:p%40ss%21@h/db") == "bad password ***");
  CHECK(redact_conninfo("postgresql://h/db?sslpassword=k3y&password=a%20b") ==
        "postgresql://h/db?sslpassword=***&password=***");
}

TEST_CASE("a '#' in a URL's query belongs to the password (libpq knows no fragment)",
          "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  // Found by tests/fuzz (conninfo): only "other" was masked, "#frag" was printed.
  std::string conninfo = "postgresql://app:pw@db/prod?password=other#frag";
  CHECK(redact_conninfo(conninfo) == "postgresql://app:***@db/prod?password=***");
  CHECK(scrub_secrets("password other#frag rejected", conninfo) == "password *** rejected");
  CHECK(redact_conninfo("postgresql://h/db?sslmode=require#x&password=p#q") ==
        "postgresql://h/db?sslmode=require#x&password=***");
}

TEST_CASE("a '?' in a URL's user info does not start the query", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  // Found by tests/fuzz (conninfo): the query was read from the '?' in "pa?ss", so the
  // password libpq sends ("q1") was masked only as part of a longer string.
  std::string conninfo = "postgresql://u:pa?ss@h/db?password=q1";
  CHECK(redact_conninfo(conninfo) == "postgresql://u:***@h/db?password=***");
  CHECK(scrub_secrets("password q1 rejected", conninfo) == "password *** rejected");
}

TEST_CASE("scrub_secrets masks each secret once, never the '***' it wrote", "[unit][conninfo]") {
  EnvGuard pgpassword("PGPASSWORD");
  // Found by tests/fuzz (conninfo, a timeout): each password "*" replaced every '*'
  // of the result again, tripling it per password (3^n characters for n of them).
  std::string many, masked;
  for (int i = 0; i < 40; ++i) {
    many += "password=* ";
    masked += "password=*** ";
  }
  CHECK(redact_conninfo(many) == masked);
  CHECK(scrub_secrets("a * b", "password=* password=*") == "a *** b");
  // Overlapping and adjacent secrets become one mask; no part of either is left.
  CHECK(scrub_secrets("xabcdy", "password=abc sslpassword=bcd") == "x***y");
  CHECK(scrub_secrets("abcd", "password=bcd sslpassword=ab") == "***");
}
