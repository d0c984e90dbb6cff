// The proxy's native relay (adapters/postgres/proxy/native-relay.ts loads it): one thread
// with its own epoll that carries plain pass-through traffic between a client socket and
// its upstream socket without entering JavaScript.
//
// JavaScript stops libuv's reading of both sockets and hands their file descriptors over
// (`attach`) while the session is idle in plain pass-through. The thread then relays, as
// the same bytes:
//   client -> upstream: whole simple-protocol Query ('Q') messages that pass the proxy's
//     pre-filter for model syntax (bytesMayHoldModelSyntax in model-router.ts, mirrored
//     in mayHoldModelSyntax below);
//   upstream -> client: whole RowDescription, DataRow, CommandComplete, EmptyQueryResponse
//     and ReadyForQuery messages.
// Anything else (another message type, a possible model token, a message larger than the
// buffer or the limits, a write that would block, end of stream, an error, a request from
// JavaScript) ends the native turn: the thread stops watching the descriptors and tells
// JavaScript (a thread-safe function), which takes the session back with `release`: the
// bytes read but not relayed (to be handled as if JavaScript had read them), the bytes
// relayed but not yet written, and the counters. The thread knows no SQL, no
// authentication and no TLS.
//
// Protocol: https://www.postgresql.org/docs/current/protocol-message-formats.html

#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <algorithm>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kFirstBufferBytes = 4 * 1024;  // per direction, at first (pgbouncer's pkt_buf)
constexpr size_t kBufferBytes = 64 * 1024;      // per direction at most; a longer message goes back to JS
constexpr int kClient = 0;
constexpr int kUpstream = 1;

// The pre-filter of model-router.ts, byte for byte: `m` followed by `l_`, or by `odel` or
// `aterialized`, or `v` followed by `ector_search`, in any case, anywhere in bytes[start, end).
bool mayHoldModelSyntax(const uint8_t* b, ptrdiff_t start, ptrdiff_t end) {
  static const char kAterialized[] = "aterialized";
  static const char kEctorSearch[] = "ector_search";
  const ptrdiff_t rest = sizeof kAterialized - 1;
  const ptrdiff_t vectorRest = sizeof kEctorSearch - 1;
  for (ptrdiff_t i = start; i < end - 2; i++) {
    if ((b[i] | 0x20) == 'v' && i + vectorRest < end) {
      ptrdiff_t k = 0;
      while (k < vectorRest && (b[i + 1 + k] | (kEctorSearch[k] == '_' ? 0 : 0x20)) == kEctorSearch[k]) k++;
      if (k == vectorRest) return true;
    }
    if ((b[i] | 0x20) != 'm') continue;
    const int b1 = b[i + 1] | 0x20;
    if (b1 == 'l' && b[i + 2] == '_') return true;
    if (b1 == 'o' && i + 4 < end && (b[i + 2] | 0x20) == 'd' && (b[i + 3] | 0x20) == 'e' && (b[i + 4] | 0x20) == 'l') return true;
    if (b1 == 'a' && i + rest < end) {
      ptrdiff_t k = 0;
      while (k < rest && (b[i + 1 + k] | 0x20) == kAterialized[k]) k++;
      if (k == rest) return true;
    }
  }
  return false;
}

// Upstream message types relayed natively (the JS fast path relays them unchanged and only counts them).
bool relayedUpstreamType(uint8_t t) { return t == 'T' || t == 'D' || t == 'C' || t == 'I' || t == 'Z'; }

uint32_t readLength(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]); }

// What one session has done natively; folded into the JS objects on hand-back.
struct Counters {
  double bytesFromClient = 0, bytesToUpstream = 0, bytesFromUpstream = 0, bytesToClient = 0;
  double queries = 0;         // Query messages relayed upstream
  double commands = 0;        // CommandComplete relayed to the client
  double readyForQuery = 0;   // ReadyForQuery relayed to the client
  double messages = 0;        // every message relayed, both ways
  int lastStatus = 0;         // status byte of the last ReadyForQuery ('I', 'T', 'E'); 0: none
};

struct Session {
  std::mutex lock;
  int64_t id = 0;
  int fd[2] = {-1, -1};
  uint32_t maxMessage[2] = {0, 0};
  std::vector<uint8_t> in[2];   // read from side i, not relayed yet (grown up to kBufferBytes while reads fill it)
  size_t inLength[2] = {0, 0};
  std::string unwritten[2];      // relayed toward side i but not written (a write that would block)
  Counters counters;
  bool released = false;        // the descriptors are no longer watched
  const char* reason = "";
};

struct Relay {
  int epoll = -1;
  int wake = -1;  // eventfd: stops the thread
  std::atomic<bool> stopping{false};
  std::mutex scheduleLock;         // held while the policy is read and applied
  bool batch = true;               // the thread's scheduling policy: SCHED_BATCH, else SCHED_OTHER
  std::atomic<int64_t> tid{0};     // the thread's Linux thread id once it runs
  std::thread thread;
  napi_threadsafe_function handBack = nullptr;
  std::mutex sessionsLock;
  std::unordered_map<int64_t, std::shared_ptr<Session>> sessions;
};

std::shared_ptr<Session> find(Relay* relay, int64_t id) {
  std::lock_guard<std::mutex> guard(relay->sessionsLock);
  auto it = relay->sessions.find(id);
  return it == relay->sessions.end() ? nullptr : it->second;
}

// Stops watching the session's descriptors (the caller holds its lock).
void unwatch(Relay* relay, Session* s, const char* reason) {
  s->released = true;
  s->reason = reason;
  epoll_ctl(relay->epoll, EPOLL_CTL_DEL, s->fd[kClient], nullptr);
  epoll_ctl(relay->epoll, EPOLL_CTL_DEL, s->fd[kUpstream], nullptr);
}

// Ends the native turn from the thread and tells JavaScript (which then calls release).
void handBack(Relay* relay, Session* s, const char* reason) {
  unwatch(relay, s, reason);
  if (!relay->stopping) napi_call_threadsafe_function(relay->handBack, reinterpret_cast<void*>(s->id), napi_tsfn_nonblocking);
}

// The length of the prefix of in[side] made of whole messages the thread relays; sets
// `stop` when the message after it must go back to JavaScript (not just wait for bytes).
size_t relayablePrefix(Session* s, int side, bool* stop) {
  const uint8_t* b = s->in[side].data();
  const size_t n = s->inLength[side];
  size_t at = 0;
  *stop = false;
  while (n - at >= 5) {
    const uint8_t type = b[at];
    const uint32_t length = readLength(b + at + 1);
    const bool allowed = side == kClient ? type == 'Q' : relayedUpstreamType(type);
    if (!allowed || length < 4 || length > s->maxMessage[side] || length + 1 > kBufferBytes) {
      *stop = true;
      break;
    }
    if (n - at < length + 1) break;  // partial: wait for the rest
    const size_t end = at + 1 + length;
    if (side == kClient) {
      if (mayHoldModelSyntax(b, at + 5, end)) {
        *stop = true;
        break;
      }
      s->counters.queries++;
    } else if (type == 'C') {
      s->counters.commands++;
    } else if (type == 'Z') {
      s->counters.readyForQuery++;
      s->counters.lastStatus = length >= 5 ? b[at + 5] : 'I';
    }
    s->counters.messages++;
    at = end;
  }
  return at;
}

// One read from `side`, and what it makes relayable written to the other side.
void service(Relay* relay, Session* s, int side) {
  const int other = 1 - side;
  std::vector<uint8_t>& buffer = s->in[side];
  if (s->inLength[side] == buffer.size()) {
    // Full of one partial message (whole ones were relayed): room for the rest, up to the limit.
    if (buffer.size() >= kBufferBytes) return handBack(relay, s, "large");
    buffer.resize(buffer.empty() ? kFirstBufferBytes : std::min(buffer.size() * 2, kBufferBytes));
  }
  uint8_t* b = buffer.data();
  const size_t room = buffer.size() - s->inLength[side];
  const ssize_t got = read(s->fd[side], b + s->inLength[side], room);
  if (got == 0) return handBack(relay, s, "end");
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    return handBack(relay, s, "error");
  }
  s->inLength[side] += size_t(got);
  // A read that filled the buffer: more is coming (a large result); read more at once next time.
  if (size_t(got) == room && buffer.size() < kBufferBytes) {
    buffer.resize(std::min(buffer.size() * 2, kBufferBytes));
    b = buffer.data();
  }
  (side == kClient ? s->counters.bytesFromClient : s->counters.bytesFromUpstream) += double(got);
  bool stop = false;
  const size_t relayable = relayablePrefix(s, side, &stop);
  if (relayable > 0) {
    ssize_t wrote = send(s->fd[other], b, relayable, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (wrote < 0) wrote = 0;
    (other == kClient ? s->counters.bytesToClient : s->counters.bytesToUpstream) += double(wrote);
    if (size_t(wrote) < relayable) s->unwritten[other].assign(reinterpret_cast<char*>(b) + wrote, relayable - size_t(wrote));
    s->inLength[side] -= relayable;
    memmove(b, b + relayable, s->inLength[side]);
    if (size_t(wrote) < relayable) return handBack(relay, s, "blocked");
  }
  if (stop) return handBack(relay, s, "message");
}

// SCHED_BATCH (the default): when a client's or the server's bytes wake the thread, it does
// not preempt the process that sent them (which goes on until it blocks or its time slice
// ends); the thread runs next and finds more events per epoll_wait, so the proxy costs a
// saturated machine less CPU per pass-through transaction. Its fair share of the CPU is
// unchanged. The price: while other CPU-bound processes share the cores, a woken thread
// waits for their time slice too (docs/performance.md, "The relay's thread under
// SCHED_BATCH"). SCHED_OTHER: Linux's default.
void applyScheduling(pthread_t thread, bool batch) {
  sched_param param{};
  pthread_setschedparam(thread, batch ? SCHED_BATCH : SCHED_OTHER, &param);
}

void run(Relay* relay) {
  // Named for `top -H` and /proc/<pid>/task/*/comm.
  pthread_setname_np(pthread_self(), "modelsql-relay");
  {
    std::lock_guard<std::mutex> guard(relay->scheduleLock);
    applyScheduling(pthread_self(), relay->batch);
  }
  relay->tid = int64_t(syscall(SYS_gettid));
  epoll_event events[64];
  while (!relay->stopping) {
    const int n = epoll_wait(relay->epoll, events, 64, -1);
    for (int i = 0; i < n; i++) {
      const uint64_t tag = events[i].data.u64;
      if (tag == UINT64_MAX) return;  // the wake eventfd: stop
      const std::shared_ptr<Session> s = find(relay, int64_t(tag >> 1));
      if (!s) continue;
      std::lock_guard<std::mutex> guard(s->lock);
      if (!s->released) service(relay, s.get(), int(tag & 1));
    }
  }
}

// ---- JavaScript side -------------------------------------------------------------------

Relay* relayOf(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  void* data = nullptr;
  napi_get_cb_info(env, info, argc, argv, nullptr, &data);
  return static_cast<Relay*>(data);
}

napi_value number(napi_env env, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  return v;
}

napi_value undefinedValue(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

void setNumber(napi_env env, napi_value object, const char* name, double value) { napi_set_named_property(env, object, name, number(env, value)); }

void setBuffer(napi_env env, napi_value object, const char* name, const void* bytes, size_t length) {
  napi_value buffer;
  void* copy = nullptr;
  napi_create_buffer_copy(env, length, length > 0 ? bytes : "", &copy, &buffer);
  napi_set_named_property(env, object, name, buffer);
}

napi_value countersObject(napi_env env, const Counters& c) {
  napi_value o;
  napi_create_object(env, &o);
  setNumber(env, o, "bytesFromClient", c.bytesFromClient);
  setNumber(env, o, "bytesToUpstream", c.bytesToUpstream);
  setNumber(env, o, "bytesFromUpstream", c.bytesFromUpstream);
  setNumber(env, o, "bytesToClient", c.bytesToClient);
  setNumber(env, o, "queries", c.queries);
  setNumber(env, o, "commands", c.commands);
  setNumber(env, o, "readyForQuery", c.readyForQuery);
  setNumber(env, o, "messages", c.messages);
  setNumber(env, o, "lastStatus", c.lastStatus);
  return o;
}

// The thread-safe function's call on the JS thread: onHandBack(id).
void callHandBack(napi_env env, napi_value callback, void*, void* data) {
  if (env == nullptr) return;
  napi_value argv[1] = {number(env, double(reinterpret_cast<int64_t>(data)))};
  napi_call_function(env, undefinedValue(env), callback, 1, argv, nullptr);
}

void stopRelay(void* data) {
  Relay* relay = static_cast<Relay*>(data);
  if (relay->epoll < 0) return;
  relay->stopping = true;
  const uint64_t one = 1;
  if (write(relay->wake, &one, sizeof one) < 0) { /* the thread then ends at its next event */ }
  if (relay->thread.joinable()) relay->thread.join();
}

// open(onHandBack): starts the thread; onHandBack(id) is called when a session comes back.
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Relay* relay = relayOf(env, info, &argc, argv);
  if (relay->epoll >= 0) return undefinedValue(env);
  napi_value name;
  napi_create_string_utf8(env, "modelsql native relay", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], nullptr, name, 0, 1, nullptr, nullptr, nullptr, callHandBack, &relay->handBack) != napi_ok) {
    napi_throw_error(env, nullptr, "cannot create the hand-back function");
    return nullptr;
  }
  napi_unref_threadsafe_function(env, relay->handBack);  // the relay never keeps the process alive
  relay->epoll = epoll_create1(EPOLL_CLOEXEC);
  relay->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(relay->epoll, EPOLL_CTL_ADD, relay->wake, &ev);
  relay->thread = std::thread(run, relay);
  napi_add_env_cleanup_hook(env, stopRelay, relay);
  return undefinedValue(env);
}

int64_t int64Arg(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

// The relay and the first argument of a call (a session id).
int64_t sessionArg(napi_env env, napi_callback_info info, Relay** relay) {
  size_t argc = 1;
  napi_value argv[1];
  *relay = relayOf(env, info, &argc, argv);
  return int64Arg(env, argv[0]);
}

// attach(id, clientFd, upstreamFd, maxClientMessage, maxUpstreamMessage): the thread takes the session.
napi_value Attach(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Relay* relay = relayOf(env, info, &argc, argv);
  auto s = std::make_shared<Session>();
  s->id = int64Arg(env, argv[0]);
  s->fd[kClient] = int(int64Arg(env, argv[1]));
  s->fd[kUpstream] = int(int64Arg(env, argv[2]));
  s->maxMessage[kClient] = uint32_t(int64Arg(env, argv[3]));
  s->maxMessage[kUpstream] = uint32_t(int64Arg(env, argv[4]));
  napi_value result;
  bool ok = relay->epoll >= 0 && !relay->stopping;
  if (ok) {
    std::lock_guard<std::mutex> guard(relay->sessionsLock);
    relay->sessions[s->id] = s;
  }
  std::lock_guard<std::mutex> guard(s->lock);
  for (int side = 0; ok && side < 2; side++) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t(s->id) << 1) | uint64_t(side);
    ok = epoll_ctl(relay->epoll, EPOLL_CTL_ADD, s->fd[side], &ev) == 0;
  }
  if (!ok && relay->epoll >= 0) {
    unwatch(relay, s.get(), "refused");
    std::lock_guard<std::mutex> sessions(relay->sessionsLock);
    relay->sessions.erase(s->id);
  }
  napi_get_boolean(env, ok, &result);
  return result;
}

// release(id): takes the session back (stopping the thread's watch if it still runs) and
// returns { reason, fromClient, fromUpstream, toClient, toUpstream, counters }, or
// undefined when it was released already.
napi_value Release(napi_env env, napi_callback_info info) {
  Relay* relay = nullptr;
  const int64_t id = sessionArg(env, info, &relay);
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> guard(relay->sessionsLock);
    auto it = relay->sessions.find(id);
    if (it == relay->sessions.end()) return undefinedValue(env);
    s = it->second;
    relay->sessions.erase(it);
  }
  std::lock_guard<std::mutex> guard(s->lock);
  if (!s->released) unwatch(relay, s.get(), "reclaimed");
  napi_value o, reason;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, s->reason, NAPI_AUTO_LENGTH, &reason);
  napi_set_named_property(env, o, "reason", reason);
  setBuffer(env, o, "fromClient", s->in[kClient].data(), s->inLength[kClient]);
  setBuffer(env, o, "fromUpstream", s->in[kUpstream].data(), s->inLength[kUpstream]);
  setBuffer(env, o, "toClient", s->unwritten[kClient].data(), s->unwritten[kClient].size());
  setBuffer(env, o, "toUpstream", s->unwritten[kUpstream].data(), s->unwritten[kUpstream].size());
  napi_set_named_property(env, o, "counters", countersObject(env, s->counters));
  return o;
}

// counters(id): the live counters of a session the thread holds, or undefined.
napi_value CountersOf(napi_env env, napi_callback_info info) {
  Relay* relay = nullptr;
  const int64_t id = sessionArg(env, info, &relay);
  const std::shared_ptr<Session> s = find(relay, id);
  if (!s) return undefinedValue(env);
  std::lock_guard<std::mutex> guard(s->lock);
  return countersObject(env, s->counters);
}

// schedule(batch): the thread's policy, SCHED_BATCH when true, else SCHED_OTHER; now if the
// thread runs, else when open starts it.
napi_value Schedule(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Relay* relay = relayOf(env, info, &argc, argv);
  bool batch = true;
  napi_get_value_bool(env, argv[0], &batch);
  std::lock_guard<std::mutex> guard(relay->scheduleLock);
  relay->batch = batch;
  if (relay->thread.joinable()) applyScheduling(relay->thread.native_handle(), batch);
  return undefinedValue(env);
}

// threadId(): the thread's Linux thread id, 0 before it runs.
napi_value ThreadId(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Relay* relay = relayOf(env, info, &argc, nullptr);
  return number(env, double(relay->tid.load()));
}

// mayHoldModelSyntax(buffer): the thread's pre-filter, for the test that it agrees with JS's.
napi_value Filter(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  relayOf(env, info, &argc, argv);
  void* data = nullptr;
  size_t length = 0;
  napi_get_buffer_info(env, argv[0], &data, &length);
  napi_value result;
  napi_get_boolean(env, mayHoldModelSyntax(static_cast<const uint8_t*>(data), 0, ptrdiff_t(length)), &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  // One relay per load of the addon (a process may load it into several contexts); never freed.
  Relay* relay = new Relay();
  const napi_property_descriptor properties[] = {
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"attach", nullptr, Attach, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"release", nullptr, Release, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"counters", nullptr, CountersOf, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"threadId", nullptr, ThreadId, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"schedule", nullptr, Schedule, nullptr, nullptr, nullptr, napi_enumerable, relay},
      {"mayHoldModelSyntax", nullptr, Filter, nullptr, nullptr, nullptr, napi_enumerable, relay},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() { return Init(env, exports); }
