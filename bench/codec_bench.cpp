// The codec (concur/detail/codec.hpp), whose cost is part of every cross-process message,
// side by side in one run with its limit and its C++ peer:
//   * a small record {int64, double, 12-char string} and 1024 int32 (std::vector<int32_t>),
//     each encoded into a caller buffer (encode_to, as the queue and the pipe do) and decoded
//     back into a fresh value: one iteration = encode + decode;
//   * the limit: a hand-written memcpy codec of the record, and two plain memcpys of the 4 KiB
//     (into a buffer, back out into a preallocated vector);
//   * cereal's binary archive over a std::stringstream (Debian libcereal-dev), the usual C++
//     way to send such values, with the very same Record type (its serialize is cereal's).
// Targets (issue 10): record <= 30 ns; 1024 int32 within 1.5x of the two memcpys.
#include <benchmark/benchmark.h>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <concur/detail/codec.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/helpers/codec_types.hpp"

namespace {
namespace codec = concur::detail::codec;

// The test suite's Record, {int64, double, string} with cereal's member serialize.
using codec_test::Record;

Record sample_record() {
  return Record{42, 3.5, "twelve chars"};
}

std::vector<std::int32_t> sample_ints() {
  std::vector<std::int32_t> v(1024);
  std::iota(v.begin(), v.end(), -512);
  return v;
}

void BM_codec_record(benchmark::State& state) {
  const Record r = sample_record();
  std::vector<std::byte> buf(codec::encoded_size(r));
  for (auto _ : state) {
    const std::size_t n = codec::encoded_size(r);
    codec::encode_to(r, buf.data());
    Record out = codec::decode<Record>(std::span(buf.data(), n));
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_codec_record);

// encode() appending to a reused vector, the form a caller without its own buffer uses.
void BM_codec_record_encode_vector(benchmark::State& state) {
  const Record r = sample_record();
  std::vector<std::byte> buf;
  for (auto _ : state) {
    buf.clear();
    codec::encode(r, buf);
    Record out = codec::decode<Record>(buf);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_codec_record_encode_vector);

// The limit: the record's fields memcpy'd by hand, no tag, no checks.
void BM_memcpy_record(benchmark::State& state) {
  const Record r = sample_record();
  std::byte buf[64];
  for (auto _ : state) {
    const std::uint64_t len = r.name.size();
    std::memcpy(buf, &r.id, 8);
    std::memcpy(buf + 8, &r.score, 8);
    std::memcpy(buf + 16, &len, 8);
    std::memcpy(buf + 24, r.name.data(), len);
    benchmark::ClobberMemory();
    Record out;
    std::uint64_t l = 0;
    std::memcpy(&out.id, buf, 8);
    std::memcpy(&out.score, buf + 8, 8);
    std::memcpy(&l, buf + 16, 8);
    out.name.assign(reinterpret_cast<const char*>(buf + 24), l);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_memcpy_record);

void BM_cereal_record(benchmark::State& state) {
  const Record r = sample_record();
  for (auto _ : state) {
    std::stringstream ss;
    {
      cereal::BinaryOutputArchive oa(ss);
      oa(r);
    }
    Record out;
    {
      cereal::BinaryInputArchive ia(ss);
      ia(out);
    }
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_cereal_record);

void BM_codec_ints1024(benchmark::State& state) {
  const std::vector<std::int32_t> v = sample_ints();
  std::vector<std::byte> buf(codec::encoded_size(v));
  for (auto _ : state) {
    const std::size_t n = codec::encoded_size(v);
    codec::encode_to(v, buf.data());
    std::vector<std::int32_t> out =
        codec::decode<std::vector<std::int32_t>>(std::span(buf.data(), n));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_codec_ints1024);

// The limit: two plain memcpys of the 4 KiB (into a buffer, back into a preallocated vector).
void BM_memcpy_ints1024_twice(benchmark::State& state) {
  const std::vector<std::int32_t> v = sample_ints();
  std::vector<std::byte> buf(4096);
  std::vector<std::int32_t> out(1024);
  for (auto _ : state) {
    std::memcpy(buf.data(), v.data(), 4096);
    benchmark::ClobberMemory();
    std::memcpy(out.data(), buf.data(), 4096);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_memcpy_ints1024_twice);

void BM_cereal_ints1024(benchmark::State& state) {
  const std::vector<std::int32_t> v = sample_ints();
  for (auto _ : state) {
    std::stringstream ss;
    {
      cereal::BinaryOutputArchive oa(ss);
      oa(v);
    }
    std::vector<std::int32_t> out;
    {
      cereal::BinaryInputArchive ia(ss);
      ia(out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_cereal_ints1024);

}  // namespace

BENCHMARK_MAIN();
