// A request that has been read whole, as the stream cpp-httplib parses: reads come from
// memory and the answer is collected in memory, so that whoever calls process_request() on
// it never waits on a client (the front writes the answer).
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include <httplib.h>

namespace stargate::server {

struct Peer {
  std::string remote_ip;
  int remote_port = 0;
  std::string local_ip;
  int local_port = 0;
};

class BufferStream final : public httplib::Stream {
 public:
  BufferStream(std::string_view request, Peer peer) : in_(request), peer_(std::move(peer)) {}

  bool is_readable() const override { return offset_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, in_.size() - offset_);
    std::memcpy(ptr, in_.data() + offset_, n);
    offset_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_.remote_ip;
    port = peer_.remote_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_.local_ip;
    port = peer_.local_port;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

  std::string take_output() { return std::move(out_); }

 private:
  std::string_view in_;
  Peer peer_;
  std::size_t offset_ = 0;
  std::string out_;
};

// cpp-httplib's routing and parsing, run on a request already read whole:
// process_request() is protected in httplib::Server.
class Dispatcher : public httplib::Server {
 public:
  using httplib::Server::process_request;
};

}  // namespace stargate::server
