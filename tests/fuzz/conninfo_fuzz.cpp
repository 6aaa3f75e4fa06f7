// Fuzzes secret masking (host/conninfo): a conninfo (URL or key=value) and a
// message to scrub. Input: the conninfo, a NUL byte, the message; without a NUL
// byte the conninfo scrubs itself. libpq's own parser is the oracle: every
// password it would send must vanish from the redacted conninfo and from a message.
#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host/conninfo.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  unsetenv("PGPASSWORD");  // its value would be scrubbed too; keep runs reproducible
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::size_t nul = input.find('\0');
  std::string conninfo = input.substr(0, nul);
  std::string message = nul == std::string::npos ? input : input.substr(nul + 1);
  std::string redacted = host::redact_conninfo(conninfo);
  host::scrub_secrets(message, conninfo);

  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (!options) {
    PQfreemem(error);
    return 0;
  }
  for (PQconninfoOption* option = options; option->keyword; ++option) {
    if (!option->val || !*option->val) continue;
    if (std::strcmp(option->keyword, "password") != 0 &&
        std::strcmp(option->keyword, "sslpassword") != 0)
      continue;
    std::string secret = option->val;
    // "***" itself could spell a secret made of asterisks: nothing to check then.
    if (secret.find('*') != std::string::npos) continue;
    FUZZ_CHECK(redacted.find(secret) == std::string::npos,
               "redact_conninfo left a password libpq reads");
    FUZZ_CHECK(host::scrub_secrets(secret, conninfo) == "***",
               "scrub_secrets did not mask a password libpq reads");
    // Whole, not in part (the message alone may be masked more: "error" holds "o").
    FUZZ_CHECK(
        host::scrub_secrets("error: " + secret + "\n", conninfo).find(secret) == std::string::npos,
        "scrub_secrets did not mask a password libpq reads inside a message");
  }
  PQconninfoFree(options);
  return 0;
}
