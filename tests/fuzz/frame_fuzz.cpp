// libFuzzer target for the Connection frame layer: the header parser
// (concur/detail/frame.hpp) and the whole receive path of mp::Connection over a real
// socketpair. Built and run like codec_fuzz (tests/fuzz/CMakeLists.txt).
//
// Input: byte 0 picks the receive call (recv_bytes, recv_bytes_into a 16-byte buffer,
// recv<std::string>, recv_handle, poll then recv_bytes), byte 1 the connection's message
// limit (at most 32 MiB, so the 4-MiB-step growth is exercised without tripping the
// fuzzer's 64 MiB allocation limit); the rest is what the peer wrote before closing.
// Properties: the parser never reads past its input, returns a header size of 4 or 12,
// never a message above the limit, and agrees with itself on every prefix; a message
// header it accepts re-encodes to the same length. Receiving ends in messages, then
// EOFError or OSError (or the typed/short-buffer errors of the call), never a crash, a leak
// (ASan) or an allocation beyond what the limit and the input allow.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "concur/detail/frame.hpp"
#include "concur/multiprocessing/connection.hpp"

namespace {

namespace cd = concur::detail;
namespace mp = concur::multiprocessing;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_parser(std::span<const std::byte> in, std::uint64_t limit) {
  std::span<const std::byte> rest = in;
  for (int frames = 0; frames < 1000; ++frames) {
    const cd::FrameHeader h = cd::parse_frame_header(rest, limit);
    check(h.header_size == 4 || h.header_size == 12);
    if (h.kind == cd::FrameKind::incomplete) {
      check(rest.size() < h.header_size);
      return;
    }
    check(rest.size() >= h.header_size);
    // Every shorter prefix is incomplete; any longer input gives the same header.
    for (std::size_t k = 0; k < h.header_size; ++k)
      check(cd::parse_frame_header(rest.first(k), limit).kind == cd::FrameKind::incomplete);
    if (h.kind == cd::FrameKind::bad_length) return;
    if (h.kind == cd::FrameKind::handle) {
      rest = rest.subspan(h.header_size);
      continue;
    }
    check(h.length <= limit);
    std::byte again[cd::kFrameMaxHeader];
    const std::size_t n = cd::write_frame_header(again, h.length);
    const cd::FrameHeader h2 = cd::parse_frame_header(std::span<const std::byte>(again, n), limit);
    check(h2.kind == cd::FrameKind::message && h2.length == h.length);
    if (h.length > rest.size() - h.header_size) return;  // torn
    rest = rest.subspan(h.header_size + static_cast<std::size_t>(h.length));
  }
}

void check_connection(int mode, std::size_t limit, std::span<const std::byte> in) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  // Inputs are at most 4 KiB (run_fuzz.cmake): they fit the socket buffer.
  std::size_t off = 0;
  while (off < in.size()) {
    const ssize_t w = ::write(sv[1], in.data() + off, in.size() - off);
    if (w <= 0) break;
    off += static_cast<std::size_t>(w);
  }
  ::close(sv[1]);
  mp::Connection c(sv[0]);
  c.set_max_message(limit);
  std::byte small[16];
  for (int i = 0; i < 4096; ++i) {
    try {
      switch (mode) {
        case 0:
          (void)c.recv_bytes();
          break;
        case 1:
          check(c.recv_bytes_into(small) <= sizeof small);
          break;
        case 2:
          (void)c.recv<std::string>();
          break;
        case 3:
          ::close(c.recv_handle());
          break;
        default:
          check(c.poll());  // the peer has closed: always ready
          (void)c.recv_bytes();
          break;
      }
    } catch (const concur::EOFError&) {
      return;
    } catch (const concur::OSError&) {
      if (c.closed() || !c.readable()) return;
      if (mode == 3) continue;  // a message where a descriptor was expected is consumed
      return;
    } catch (const mp::BufferTooShort& e) {
      check(e.message().size() > sizeof small);
    } catch (const concur::TypeError&) {
    } catch (const concur::ValueError&) {  // DecodeError
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(data) + 2, size - 2);
  const std::size_t limit =
      std::min<std::size_t>(std::size_t{data[1]} << 17, std::size_t{32} << 20);
  check_parser(body, limit);
  check_parser(body, std::uint64_t{1} << 30);
  check_connection(data[0] % 5, limit, body);
  return 0;
}
