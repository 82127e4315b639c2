// The Debian packages as an administrator meets them: built by scripts/package (debhelper,
// lintian), their contents, the units (systemd-analyze verify and security), an install into
// a scratch root with dpkg --root, the daemon started there the way its unit starts it, and
// an upgrade that keeps the queue and the administrator's configuration.
// One program, one ctest entry (the build takes minutes): the steps share what it built.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "tests/support/process.hpp"

namespace stargate::test {
namespace {

using namespace std::chrono_literals;

const std::string kSource = STARGATE_SOURCE_DIR;
// The test's own packages (scripts/package --out), built quickly (--quick: unoptimised,
// in batches): what is tested is the packaging, and dist/ keeps only what scripts/package
// makes for hosts.
const std::string kDist = std::string(STARGATE_BINARY_DIR) + "/packaging-test";
const std::string kStargate = kDist + "/stargate_0.1.0_amd64.deb";
const std::string kServer = kDist + "/stargate-server_0.1.0_amd64.deb";

class Packages : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // STARGATE_PACKAGES_BUILT=1 reuses the packages as they are (while working on these
    // tests).
    const char* reuse = std::getenv("STARGATE_PACKAGES_BUILT");
    if (reuse != nullptr && std::string(reuse) == "1") {
      built_.exit_code = 0;
      return;
    }
    built_ = run({kSource + "/scripts/package", "--out", kDist, "--quick"}, {}, "",
                 std::chrono::minutes(20));
  }
  static RunResult built_;

  // Installs (or upgrades) packages into `root` with dpkg --root, maintainer scripts and all
  // (run outside a chroot, with DPKG_ROOT, as debhelper's scripts support).
  static RunResult dpkg_install(const std::string& root, const std::vector<std::string>& debs) {
    for (const char* dir : {"/var/lib/dpkg/updates", "/var/lib/dpkg/info", "/etc"}) {
      std::filesystem::create_directories(root + dir);
    }
    if (!std::filesystem::exists(root + "/var/lib/dpkg/status")) {
      write_file(root + "/var/lib/dpkg/status", "");
    }
    std::vector<std::string> argv = {"/usr/bin/dpkg", "--root=" + root, "--force-script-chrootless",
                                     "--force-depends", "-i"};
    argv.insert(argv.end(), debs.begin(), debs.end());
    return run(argv, {"DPKG_ROOT=" + root});
  }

  static std::string contents(const std::string& deb) {
    return run({"/usr/bin/dpkg-deb", "--contents", deb}).out;
  }
};

RunResult Packages::built_;

TEST_F(Packages, BuildAndPassLintian) {
  ASSERT_EQ(built_.exit_code, 0) << built_.out << built_.err;
  EXPECT_TRUE(std::filesystem::exists(kStargate));
  EXPECT_TRUE(std::filesystem::exists(kServer));
  // scripts/package ran lintian --fail-on error; say what it said.
  std::cout << "lintian: " << (built_.err.empty() ? "no findings\n" : built_.err);
}

TEST_F(Packages, HoldBinariesUnitsManPagesAndCompletion) {
  ASSERT_EQ(built_.exit_code, 0);
  const auto daemon = contents(kStargate);
  for (const char* file :
       {"./usr/bin/stargate", "./usr/sbin/stargated", "./lib/systemd/system/stargated.service",
        "./lib/systemd/system/stargated.socket", "./usr/lib/sysusers.d/stargate.conf",
        "./etc/stargate/stargated.toml", "./usr/share/man/man1/stargate.1.gz",
        "./usr/share/man/man8/stargated.8.gz", "./usr/share/man/man5/stargated.toml.5.gz",
        "./usr/share/bash-completion/completions/stargate",
        "./usr/share/zsh/vendor-completions/_stargate",
        "./usr/share/fish/vendor_completions.d/stargate.fish",
        "./usr/share/stargate/openapi/stargated.json", "./usr/share/doc/stargate/copyright"}) {
    EXPECT_NE(daemon.find(std::string(file) + "\n"), std::string::npos) << file;
  }
  const auto server = contents(kServer);
  for (const char* file :
       {"./usr/sbin/stargate-server", "./lib/systemd/system/stargate-server.service",
        "./lib/systemd/system/stargate-server-gateway@.service",
        "./lib/systemd/system/stargate-server-worker@.service",
        "./usr/lib/sysusers.d/stargate-server.conf", "./etc/stargate-server/server.toml",
        "./usr/share/man/man8/stargate-server.8.gz",
        "./usr/share/stargate-server/openapi/gateway.json",
        "./usr/share/stargate-server/prometheus/stargate-rules.yml",
        "./usr/share/stargate-server/grafana/stargate-gateway.json",
        "./usr/share/stargate-server/grafana/stargate-daemons.json"}) {
    EXPECT_NE(server.find(std::string(file) + "\n"), std::string::npos) << file;
  }
  // Dependencies come from the libraries' shlibs, not from a hand-written list.
  const auto fields = run({"/usr/bin/dpkg-deb", "--field", kStargate, "Depends"}).out;
  EXPECT_NE(fields.find("libsqlite3-0"), std::string::npos) << fields;
  EXPECT_NE(fields.find("libsystemd0"), std::string::npos) << fields;
  // The configuration is a conffile: upgrades keep the administrator's edits.
  TempDir control;
  ASSERT_EQ(run({"/usr/bin/dpkg-deb", "--control", kStargate, control.path()}).exit_code, 0);
  EXPECT_EQ(read_file(control.file("conffiles")), "/etc/stargate/stargated.toml\n");
  // Purge, and only purge, removes the queue.
  const auto postrm = read_file(control.file("postrm"));
  EXPECT_NE(postrm.find("\"purge\" ]; then\n\trm -rf /var/lib/stargate"), std::string::npos);
}

TEST_F(Packages, UnitsVerifyAndTheDaemonScoresWellOnSecurity) {
  ASSERT_EQ(built_.exit_code, 0);
  TempDir root;
  ASSERT_EQ(dpkg_install(root.path(), {kStargate, kServer}).exit_code, 0);
  // systemd-analyze needs the base targets and the commands the units name.
  ASSERT_EQ(
      run({"/bin/cp", "-an", "/lib/systemd/system/.", root.file("lib/systemd/system")}).exit_code,
      0);
  std::filesystem::create_directories(root.file("bin"));
  std::filesystem::copy_file("/bin/kill", root.file("bin/kill"));
  for (const char* unit :
       {"stargated.service", "stargated.socket", "stargate-server.service",
        "stargate-server-gateway@1.service", "stargate-server-worker@1.service"}) {
    auto verified =
        run({"/usr/bin/systemd-analyze", "verify", "--man=no", "--root=" + root.path(), unit});
    EXPECT_EQ(verified.exit_code, 0) << unit << ": " << verified.out << verified.err;
  }
  for (const char* unit : {"stargated.service", "stargate-server.service",
                           "stargate-server-gateway@.service", "stargate-server-worker@.service"}) {
    auto security = run({"/usr/bin/systemd-analyze", "security", "--offline=true",
                         root.file(std::string("lib/systemd/system/") + unit)});
    std::smatch level;
    const std::string text = security.out;
    ASSERT_TRUE(
        std::regex_search(text, level, std::regex(R"(Overall exposure level for \S+: ([0-9.]+))")))
        << text;
    std::cout << unit << ": systemd-analyze security exposure " << level[1] << "\n";
    EXPECT_LE(std::stod(level[1]), 2.0) << unit;
  }
}

TEST_F(Packages, InstalledFilesAreWhereTheUnitExpectsThemAndTheDaemonStartsAsItWould) {
  ASSERT_EQ(built_.exit_code, 0);
  TempDir root;
  auto installed = dpkg_install(root.path(), {kStargate});
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  const auto unit = read_file(root.file("lib/systemd/system/stargated.service"));
  for (const std::string& line :
       {std::string("ExecStart=/usr/sbin/stargated --config /etc/stargate/stargated.toml"),
        std::string("LoadCredential=client_secret:/etc/stargate/client_secret"),
        std::string("User=stargate"), std::string("Type=notify")}) {
    EXPECT_NE(unit.find(line + "\n"), std::string::npos) << line;
  }
  struct stat st {};
  ASSERT_EQ(::stat(root.file("usr/sbin/stargated").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_TRUE(std::filesystem::exists(root.file("etc/stargate/stargated.toml")));
  EXPECT_NE(read_file(root.file("etc/passwd")).find("stargate:"), std::string::npos);  // sysusers

  // Started the way the unit starts it: the secret as a credential, the directories systemd
  // makes, readiness on NOTIFY_SOCKET.
  TempDir run_dir;
  write_file(run_dir.file("client_secret"), "s3cret\n", 0400);
  std::filesystem::create_directories(run_dir.file("runtime"));
  std::filesystem::create_directories(run_dir.file("state"));
  const std::string notify = run_dir.file("notify");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", notify.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  Child daemon(
      {root.file("usr/sbin/stargated"), "--config", root.file("etc/stargate/stargated.toml")},
      {"CREDENTIALS_DIRECTORY=" + run_dir.path(), "NOTIFY_SOCKET=" + notify,
       "RUNTIME_DIRECTORY=" + run_dir.file("runtime"), "STATE_DIRECTORY=" + run_dir.file("state"),
       "JOURNAL_STREAM=", "-STARGATE_SOCKET"},
      run_dir.file("daemon.log"));
  std::string received;
  ASSERT_TRUE(wait_until(
      [&] {
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
        return received.find("READY=1") != std::string::npos;
      },
      30s))
      << read_file(run_dir.file("daemon.log"));
  ::close(fd);
  auto health = run({"/usr/bin/curl", "-s", "--unix-socket", run_dir.file("runtime/stargated.sock"),
                     "http://localhost/v1/health"});
  ASSERT_EQ(health.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(health.out)["version"], "0.1.0");
  EXPECT_TRUE(std::filesystem::exists(run_dir.file("state/queue.db")));
  EXPECT_EQ(daemon.stop(SIGTERM), 0);
}

TEST_F(Packages, AnUpgradeKeepsTheQueueAndTheConfiguration) {
  ASSERT_EQ(built_.exit_code, 0);
  TempDir root;
  ASSERT_EQ(dpkg_install(root.path(), {kStargate}).exit_code, 0);
  // The administrator's edit of the conffile.
  const auto config = root.file("etc/stargate/stargated.toml");
  write_file(config, read_file(config) + "\n# edited by the administrator\n");
  // Requests queued while the gateway is away, then the daemon stopped (as an upgrade's
  // restart stops it).
  TempDir run_dir;
  write_file(run_dir.file("client_secret"), "s3cret\n", 0400);
  const std::vector<std::string> env = {
      "CREDENTIALS_DIRECTORY=" + run_dir.path(), "RUNTIME_DIRECTORY=" + run_dir.file("runtime"),
      "STATE_DIRECTORY=" + run_dir.file("state"), "-STARGATE_SOCKET"};
  std::filesystem::create_directories(run_dir.file("runtime"));
  std::filesystem::create_directories(run_dir.file("state"));
  const auto start = [&] {
    auto child = std::make_unique<Child>(
        std::vector<std::string>{root.file("usr/sbin/stargated"), "--config", config}, env,
        run_dir.file("daemon.log"));
    EXPECT_TRUE(wait_until(
        [&] { return std::filesystem::exists(run_dir.file("runtime/stargated.sock")); }, 30s));
    return child;
  };
  auto daemon = start();
  for (const char* id : {"before-upgrade-1", "before-upgrade-2"}) {
    auto queued =
        run({root.file("usr/bin/stargate"), "--socket", run_dir.file("runtime/stargated.sock"),
             "submit", "order", "--id", id, "--data", "{}"});
    ASSERT_EQ(queued.exit_code, 0) << queued.err;
  }
  EXPECT_EQ(daemon->stop(SIGTERM), 0);
  // The upgrade (the same version reinstalled: the maintainer scripts run as for one).
  auto upgraded = dpkg_install(root.path(), {kStargate});
  ASSERT_EQ(upgraded.exit_code, 0) << upgraded.out << upgraded.err;
  EXPECT_NE(read_file(config).find("# edited by the administrator"), std::string::npos);
  daemon = start();
  auto queue = run({root.file("usr/bin/stargate"), "--socket",
                    run_dir.file("runtime/stargated.sock"), "--json", "queue"});
  ASSERT_EQ(queue.exit_code, 0) << queue.err;
  const auto waiting = nlohmann::json::parse(queue.out);
  ASSERT_EQ(waiting.size(), 2u);
  EXPECT_EQ(waiting[0]["clientProcessId"], "before-upgrade-1");
  EXPECT_EQ(daemon->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace stargate::test
