// Test support: a raw stream connection (TCP on loopback, or a Unix socket) for sending
// exactly the bytes an attacker would, slowly or malformed, and seeing how the peer ends it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace stargate::test {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port from `source` (any 127.x.y.z address: the whole block is
  // loopback). ok() is false when the connection could not be made.
  static RawConnection tcp(int port, const std::string& source = "127.0.0.1");
  static RawConnection unix_socket(const std::string& path);

  RawConnection() = default;
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&& other) noexcept;
  ~RawConnection();

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // False once the peer has closed (EPIPE, ECONNRESET).
  bool send(std::string_view bytes);
  // Closes the sending side only (shutdown SHUT_WR): the peer reads the end of the stream.
  void finish_sending();
  // What arrives until the peer closes or `limit` passes; closed() tells which.
  std::string read_until_closed(std::chrono::milliseconds limit);
  // What arrives until `marker` has been read, the peer closes, or `limit` passes.
  std::string read_until(std::string_view marker, std::chrono::milliseconds limit);
  bool closed() const { return closed_; }
  void close();

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
  bool closed_ = false;
};

}  // namespace stargate::test
