// concur/detail/frame.hpp — the frame header of a Connection's byte stream, and its parser.
//
// The wire format is Python's multiprocessing.connection format, so a concur Connection and a
// Python Connection exchange send_bytes/recv_bytes messages unchanged:
//   * a big-endian int32 payload length, then the payload (lengths 0 .. 2^31-1);
//   * or int32 -1, a big-endian uint64 length, then the payload (Python uses it beyond
//     2^31-1; any length is accepted in this form);
//   * concur's own: int32 -2 and no payload, sent together with one file descriptor
//     (SCM_RIGHTS) by Connection::send_handle. Python never writes it.
// Any other negative int32 is a bad frame (Python would return b'' for it; we refuse it).
//
// parse_frame_header is the whole parser: a pure function over the bytes received so far,
// which never reads past them and never allocates, so a fuzzer can drive it directly
// (tests/fuzz/). Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace concur::detail {

inline constexpr std::size_t kFrameShortHeader = 4;  // int32 length
inline constexpr std::size_t kFrameLongHeader = 12;  // int32 -1, uint64 length
inline constexpr std::size_t kFrameMaxHeader = kFrameLongHeader;
inline constexpr std::int32_t kFrameLongMarker = -1;
inline constexpr std::int32_t kFrameHandleMarker = -2;

enum class FrameKind : std::uint8_t {
  incomplete,  // more bytes are needed to know the header (header_size: how many in all)
  message,     // a message of `length` payload bytes follows the header_size header bytes
  handle,      // a file-descriptor frame (header only)
  bad_length,  // a negative length that is no marker, or a length above the limit
};

struct FrameHeader {
  FrameKind kind;
  std::uint8_t header_size;  // bytes of header (4 or 12), also when incomplete
  std::uint64_t length;      // payload length (the claimed one for bad_length)
};

// Reads the header at the front of `bytes` (the bytes received so far; more may follow).
// A message longer than `limit` is bad_length. Never reads beyond `bytes`.
constexpr FrameHeader parse_frame_header(std::span<const std::byte> bytes,
                                         std::uint64_t limit) noexcept {
  if (bytes.size() < kFrameShortHeader)
    return {FrameKind::incomplete, static_cast<std::uint8_t>(kFrameShortHeader), 0};
  std::uint32_t word = 0;
  for (std::size_t i = 0; i < 4; ++i) word = (word << 8) | std::to_integer<std::uint32_t>(bytes[i]);
  const auto n = static_cast<std::int32_t>(word);
  if (n >= 0) {
    const auto len = static_cast<std::uint64_t>(n);
    return {len > limit ? FrameKind::bad_length : FrameKind::message,
            static_cast<std::uint8_t>(kFrameShortHeader), len};
  }
  if (n == kFrameHandleMarker)
    return {FrameKind::handle, static_cast<std::uint8_t>(kFrameShortHeader), 0};
  if (n != kFrameLongMarker)
    return {FrameKind::bad_length, static_cast<std::uint8_t>(kFrameShortHeader), word};
  if (bytes.size() < kFrameLongHeader)
    return {FrameKind::incomplete, static_cast<std::uint8_t>(kFrameLongHeader), 0};
  std::uint64_t len = 0;
  for (std::size_t i = 4; i < 12; ++i) len = (len << 8) | std::to_integer<std::uint64_t>(bytes[i]);
  return {len > limit ? FrameKind::bad_length : FrameKind::message,
          static_cast<std::uint8_t>(kFrameLongHeader), len};
}

// Writes the header of a message of `length` bytes at `out` (room for kFrameMaxHeader bytes);
// returns its size: 4, or 12 beyond 2^31-1 (Python's choice).
constexpr std::size_t write_frame_header(std::byte* out, std::uint64_t length) noexcept {
  auto put_be = [](std::byte* p, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
  };
  if (length <= 0x7fffffffu) {
    put_be(out, length, 4);
    return kFrameShortHeader;
  }
  put_be(out, 0xffffffffu, 4);
  put_be(out + 4, length, 8);
  return kFrameLongHeader;
}

// The 4 header bytes of a file-descriptor frame.
constexpr std::size_t write_handle_header(std::byte* out) noexcept {
  const auto w = static_cast<std::uint32_t>(kFrameHandleMarker);
  for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(w >> (8 * (3 - i)));
  return kFrameShortHeader;
}

}  // namespace concur::detail
