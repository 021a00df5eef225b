// TEMPORARY stub until the net branch's Listener/Client land.
#include "concur/multiprocessing/managers.hpp"
namespace concur::multiprocessing::detail {
void server_handshake(Connection&, const std::string&, concur::detail::Deadline) {
  throw AuthenticationError("no handshake yet");
}
void client_handshake(Connection&, const std::string&, concur::detail::Deadline) {
  throw AuthenticationError("no handshake yet");
}
}  // namespace concur::multiprocessing::detail
