// Tests of server/engine/engine.cpp with a real store: the two failures the engine makes
// itself, whatever the process type (the handlers' own are tested with each handler).
#include "server/engine/engine.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "server/store/sqlite/sqlite_store.hpp"
#include "shared/clock.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

class BreaksOff final : public Handler {
 public:
  HandlerOutcome run(const HandlerInput&, HandlerContext&) override {
    throw std::runtime_error("index out of range in the handler");
  }
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStore::open(dir_.file("store.db"));
    ASSERT_TRUE(opened) << opened.error();
    store_ = std::move(*opened);
  }

  std::string accept(const std::string& type) {
    NewProcess process;
    process.tenant = "acme";
    process.request.client_process_id = "cp-" + type;
    process.request.process_type = type;
    process.now = now_utc();
    auto created = store_->create_process(process);
    EXPECT_TRUE(created) << created.error();
    return created ? created->process.view.process_id : "";
  }

  // The process once it has ended (or as it is after 10 s).
  ProcessView ended(const std::string& id) {
    ProcessView view;
    test::wait_until(
        [&] {
          auto found = store_->get_process("acme", id);
          if (!found || !*found) return false;
          view = (*found)->view;
          return view.status == ProcessStatus::kCompleted || view.status == ProcessStatus::kFailed;
        },
        10s);
    return view;
  }

  test::TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

// A handler that throws fails its process with HANDLER_ERROR, retryable (the next attempt
// may not meet the same fault), and the worker goes on to the next process; a process whose
// type has no handler (one removed from the configuration, after a restart) fails with
// NO_HANDLER, not retryable, instead of staying queued for good.
TEST_F(EngineTest, AHandlerThatThrowsAndATypeWithoutOneFailTheirProcesses) {
  const std::string broken = accept("broken");
  const std::string gone = accept("gone");
  Engine engine(*store_, {{"broken", std::make_shared<BreaksOff>()}}, 1);
  ASSERT_TRUE(engine.start());
  engine.notify();

  const ProcessView threw = ended(broken);
  ASSERT_EQ(threw.status, ProcessStatus::kFailed);
  ASSERT_TRUE(threw.error);
  EXPECT_EQ(threw.error->code, "HANDLER_ERROR");
  EXPECT_NE(threw.error->message.find("index out of range in the handler"), std::string::npos)
      << threw.error->message;
  EXPECT_TRUE(threw.retryable);

  const ProcessView unhandled = ended(gone);
  ASSERT_EQ(unhandled.status, ProcessStatus::kFailed);
  ASSERT_TRUE(unhandled.error);
  EXPECT_EQ(unhandled.error->code, "NO_HANDLER");
  EXPECT_NE(unhandled.error->message.find("gone"), std::string::npos) << unhandled.error->message;
  EXPECT_FALSE(unhandled.retryable);
  EXPECT_TRUE(engine.running());
  engine.stop();
}

}  // namespace
}  // namespace stargate::server
