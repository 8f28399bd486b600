// SPDX-License-Identifier: MIT
// NAME
//   master_server.cc - the master(8) child skeleton: start-up and serving
// DESCRIPTION
//   Server::run() does what Postfix's single-threaded skeleton does at
//   start-up, in its order (chdir, pre_init, privileges,
//   post_init), then serves on the caller's libevent loop. Unlike that
//   skeleton, a process may hold up to smtpd_sessions_per_process
//   sessions at once. master(8) only needs to know when a process can
//   take no more clients, so TAKEN is sent when the process becomes full
//   (or stops accepting for good) and AVAIL when it has room again. With
//   a limit of 1 that is Postfix's own TAKEN-after-accept,
//   AVAIL-after-session pattern.
//
//   Postfix keeps all but one of a service's idle processes asleep in an
//   accept lock, so that a new client wakes one process, not all. A
//   process with sessions on its event loop cannot sleep in a lock, so
//   the listeners sit in an epoll set of their own, registered with
//   EPOLLEXCLUSIVE, and a process with no session waits on that set
//   directly (Server::run): the kernel then wakes one of the waiting
//   processes per client. A process with sessions and room for more
//   watches the same set from its event loop and may be woken with the
//   others; accept() is non-blocking, so whoever loses the race sees
//   EAGAIN and carries on. No lock file is used.
// BUGS
//   -L is for development: no status channel, and no
//   max_idle or max_use; it serves until SIGTERM or SIGINT.
//   daemon_timeout (the per-turn watchdog) is left to the sessions.
// SEE ALSO
//   master.h, master.cc, master(8), postscreen(8)
#include "common/mail/attr.h"
#include "common/mail/log.h"
#include "common/mail/master.h"
#include "common/util/event.h"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <list>
#include <memory>
#include <netdb.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rs::mail {

namespace {

// The descriptors master(8) hands every child (master_proto.h).
constexpr int kFlowReadFd = 3;
constexpr int kFlowWriteFd = 4;
constexpr int kStatusFd = 5;
constexpr int kListenFd = 6;

// After accept() fails for want of descriptors or memory, a process
// leaves its listeners alone this long rather than retry in a tight loop.
constexpr int kAcceptBackoffMs = 50;

// A process with no session sleeps on its listeners at most this long
// before it runs its event loop once for timers (max_idle, the resume
// spool's sweep) and background writes.
constexpr int kIdleWaitMs = 1000;

// At most this many clients are accepted from one listener per wake-up.
constexpr int kAcceptBatch = 32;

// A pass hand-off must complete within this many seconds of silence
// (Postfix's pass_accept uses the same 100s), and its attribute list may
// not exceed this many bytes: four short addresses and ports fit easily.
constexpr int kPassTimeoutSeconds = 100;
constexpr size_t kPassAttrLimit = 4096;

// Bound for smtpd_sessions_per_process: every session costs descriptors
// and memory, and RLIMIT_NOFILE is far below this anyway.
constexpr int64_t kMaxSessionsPerProcess = 100000;

// master(8) stops a service with SIGTERM and does not wait for a reply:
// leave at once, without running destructors that might block.
extern "C" void exit_on_signal(int)
{
    _exit(0);
}

void install_exit_signal(int sig)
{
    struct sigaction sa {};
    sa.sa_handler = exit_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) != 0) {
        log::fatal("sigaction({}): {}", sig, std::strerror(errno));
    }
}

bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

// master's status channel and listeners are sockets (the channel may be
// a pipe on systems without duplex pipes); anything else there means we
// were not started by master.
bool fd_is_socket(int fd, bool or_fifo)
{
    struct stat st {};
    return fstat(fd, &st) == 0
           && (S_ISSOCK(st.st_mode) || (or_fifo && S_ISFIFO(st.st_mode)));
}

void set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        log::fatal("fcntl(fd {}, FD_CLOEXEC): {}", fd, std::strerror(errno));
    }
}

bool set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) >= 0;
}

timeval millis(long ms)
{
    return timeval{ms / 1000, static_cast<suseconds_t>((ms % 1000) * 1000)};
}

} // namespace

void read_master_config(Config& config, const MasterOptions& options)
{
    // master(8) always exports MAIL_CONFIG; a daemon started by hand
    // reads the default instance, as Postfix's do.
    const char* dir = std::getenv("MAIL_CONFIG");
    config.read_main_cf(dir && *dir ? dir : "/etc/postfix");

    // -o values replace main.cf's, in the order master.cf gives them.
    for (const auto& o : options.overrides) {
        config.set_override(o);
    }
    config.set("service_name", options.service_name);
}

struct Server::Impl {
    Impl(Server& s, event_base* b, MasterOptions o, Config& c, Hooks h)
        : self(s), base(b), opt(std::move(o)), config(c), hooks(std::move(h))
    {
    }

    // A pass hand-off in progress: the UNIX connection from postscreen,
    // the client descriptor once it has arrived, the attribute bytes.
    struct PassConn {
        Impl* impl = nullptr;
        Fd conn;
        Fd client;
        std::string buf;
        EventPtr ev;
        std::list<std::unique_ptr<PassConn>>::iterator self;
    };

    Server& self;
    event_base* base;
    MasterOptions opt;
    Config& config;
    Hooks hooks;

    enum class Mode { master, standalone, listen } mode = Mode::master;
    unsigned generation = 0;
    long max_idle = 0;
    long max_use = 0;
    long use_count = 0;
    int session_limit = 1;
    int pending = 0;          // pass hand-offs still being received
    bool taken = false;       // the last status master got was TAKEN
    bool master_gone = false; // fd 5 closed or failed: send nothing more
    bool listening = false;
    bool done = false;
    int exit_status = 0;

    std::vector<int> listen_fds;
    std::vector<Fd> own_listeners; // -L only
    Fd accept_ep;                  ///< the listeners (and fd 5), see above
    EventPtr accept_event;         ///< accept_ep, on our event loop
    bool status_in_ep = false;     ///< fd 5 is in accept_ep
    EventPtr status_event;
    EventPtr idle_timer;
    EventPtr backoff_timer;
    std::list<std::unique_ptr<PassConn>> passes;

    int active() const { return self.sessions_ + pending; }

    void start();
    void open_own_listener();
    void drop_privileges(const std::string& queue_dir);
    void setup_events();
    void update();
    void send_status(bool avail);
    void maybe_exit();
    void detach_to_drain();
    void finish(int status);
    bool on_listen_ready(int fd); ///< true: accepted, try for another
    void on_accept_ep();
    void set_listening(bool want);
    bool idle() const
    {
        return mode == Mode::master && !done && active() == 0 && !self.draining_
               && listening;
    }
    void idle_wait();
    void begin_session(Fd client, ConnInfo info);
    void start_pass(Fd conn);
    void on_pass_ready(PassConn* p, short what);
    void drop_pass(PassConn* p, const std::string& why);

    static void accept_cb(evutil_socket_t, short, void* arg) noexcept
    {
        static_cast<Impl*>(arg)->on_accept_ep();
    }
    static void status_cb(evutil_socket_t, short, void* arg) noexcept
    {
        // Readable or EOF on fd 5: master is reloading or going away. We
        // read nothing from it; finish the sessions we have, then leave.
        auto* m = static_cast<Impl*>(arg);
        m->master_gone = true;
        m->self.draining_ = true;
        m->status_event.reset();
        if (m->status_in_ep) {
            epoll_ctl(m->accept_ep.get(), EPOLL_CTL_DEL, kStatusFd, nullptr);
            m->status_in_ep = false;
        }
        if (m->active() > 0) {
            m->detach_to_drain();
        }
        m->update();
        m->maybe_exit();
    }
    static void idle_cb(evutil_socket_t, short, void* arg) noexcept
    {
        auto* m = static_cast<Impl*>(arg);
        if (m->active() == 0) {
            m->finish(0);
        }
    }
    static void backoff_cb(evutil_socket_t, short, void* arg) noexcept
    {
        static_cast<Impl*>(arg)->update();
    }
    static void pass_cb(evutil_socket_t, short what, void* arg) noexcept
    {
        auto* p = static_cast<PassConn*>(arg);
        p->impl->on_pass_ready(p, what);
    }
};

Server::Server(event_base* base, MasterOptions options, Config& config,
               Hooks hooks)
    : impl_(new Impl(*this, base, std::move(options), config, std::move(hooks)))
{
}

Server::~Server()
{
    delete impl_;
}

int Server::run()
{
    impl_->start();
    while (!impl_->done) {
        if (impl_->idle()) {
            // Nothing to serve: sleep where only one process of the
            // service is woken per client, then let the loop handle it.
            impl_->idle_wait();
            if (event_base_loop(impl_->base, EVLOOP_NONBLOCK) < 0) {
                log::fatal("event loop failed");
            }
        } else {
            // 1: no event is left to wait for, as event_base_dispatch()
            // would return.
            int rc = event_base_loop(impl_->base, EVLOOP_ONCE);
            if (rc < 0) {
                log::fatal("event loop failed");
            }
            if (rc == 1) {
                break;
            }
        }
    }
    return impl_->exit_status;
}

void Server::session_done()
{
    // Every on_session call ends here exactly once; more is a bug in the
    // caller that would corrupt the counts master relies on.
    if (sessions_ <= 0) {
        log::panic("session_done: no session is open");
    }
    --sessions_;
    ++impl_->use_count;

    // Stand-alone -S serves its one session and is done.
    if (impl_->mode == Impl::Mode::standalone) {
        impl_->finish(0);
        return;
    }

    // max_use counts finished sessions; once reached, take no more and
    // leave when the last one ends.
    if (impl_->max_use > 0 && impl_->use_count >= impl_->max_use) {
        draining_ = true;
    }
    impl_->update();
    impl_->maybe_exit();
}

void Server::Impl::start()
{
    // A client or master that goes away must not kill us with SIGPIPE,
    // and a file size limit is an error to report, not a signal.
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    install_exit_signal(SIGTERM);

    // Without a session handler there is nothing to serve: a caller bug.
    if (!hooks.on_session) {
        log::panic("Server: no on_session hook");
    }
    if (opt.debugger) {
        log::warning("-D (run under debugger_command) is not supported; "
                     "ignored");
    }

    if (opt.standalone) {
        mode = Mode::standalone;
    } else if (!opt.listen_address.empty()) {
        mode = Mode::listen;
    }
    if (mode != Mode::master) {
        install_exit_signal(SIGINT);
    }

    // master gives each child its generation in octal; every status
    // message must echo it or master ignores the message.
    if (const char* gen = std::getenv("GENERATION"); gen && *gen) {
        std::string_view g(gen);
        auto [end, ec] =
            std::from_chars(g.data(), g.data() + g.size(), generation, 8);
        if (ec != std::errc() || end != g.data() + g.size()) {
            log::fatal("bad GENERATION environment value: {}", g);
        }
    }

    // The parameters the skeleton itself uses; -i and -m win over main.cf
    // and -o, as in Postfix.
    config.set("service_name", opt.service_name);
    std::string queue_dir = config.str("queue_directory");
    max_idle = opt.max_idle ? *opt.max_idle : config.time("max_idle", 's');
    max_use = opt.max_use ? *opt.max_use : config.integer("max_use", 0);
    session_limit = static_cast<int>(config.integer(
        "smtpd_sessions_per_process", 1, kMaxSessionsPerProcess));
    if (mode == Mode::listen) {
        max_idle = 0;
        max_use = 0;
    }

    // Under master: the status channel and the listeners must be there,
    // and a terminal on stdin means somebody started us by hand.
    if (mode == Mode::master) {
        if (!opt.debug && isatty(STDIN_FILENO)) {
            log::fatal("do not run this command by hand");
        }
        if (!fd_is_socket(kStatusFd, true)) {
            log::fatal("no master status channel on fd {}: run from "
                       "master(8), or use -S or -L",
                       kStatusFd);
        }
        for (int i = 0; i < opt.listen_count; ++i) {
            if (!fd_is_socket(kListenFd + i, false)) {
                log::fatal("no listen socket on fd {} (-s {})", kListenFd + i,
                           opt.listen_count);
            }
            listen_fds.push_back(kListenFd + i);
        }

        // None of master's descriptors may leak into a program we might
        // run (a pipe to a command, a milter we start, ...).
        for (int fd : {kFlowReadFd, kFlowWriteFd}) {
            if (fd_is_open(fd)) {
                set_cloexec(fd);
            }
        }
        set_cloexec(kStatusFd);
        for (int fd : listen_fds) {
            set_cloexec(fd);
        }
    }

    // -L binds its own listener now, while a privileged port is possible.
    if (mode == Mode::listen) {
        open_own_listener();
    }

    // The queue directory is our working directory, and the root of the
    // chroot jail if there is one.
    if (chdir(queue_dir.c_str()) != 0) {
        log::fatal("chdir(\"{}\"): {}", queue_dir, std::strerror(errno));
    }

    // The application opens what it cannot reach after chroot/setuid.
    if (hooks.pre_init) {
        hooks.pre_init();
    }

    drop_privileges(queue_dir);

    if (hooks.post_init) {
        hooks.post_init();
    }

    // -S: the one session is on stdin/stdout, with nobody to report to.
    if (mode == Mode::standalone) {
        ConnInfo info = conn_info_of_socket(STDIN_FILENO);
        info.standalone_stdio = true;
        if (!set_nonblocking(STDIN_FILENO)) {
            log::fatal("fcntl(stdin, O_NONBLOCK): {}", std::strerror(errno));
        }
        self.sessions_ = 1;
        hooks.on_session(Fd(STDIN_FILENO), std::move(info));
        return;
    }
    setup_events();
}

void Server::Impl::open_own_listener()
{
    auto hp = split_host_port(opt.listen_address);
    if (!hp) {
        log::fatal("{}", hp.error().text);
    }
    const auto& [host, port] = *hp;

    // Numeric addresses only: this is a development switch, and a name
    // that resolves to several addresses would be ambiguous.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(),
                         &hints, &res);
    if (rc != 0) {
        log::fatal("-L {}: {}", opt.listen_address, gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);

    // Bind the first address (for ":port" that is the wildcard);
    // SO_REUSEADDR so that a restart does not wait for TIME_WAIT.
    Fd fd(socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        log::fatal("socket: {}", std::strerror(errno));
    }
    int on = 1;
    if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
        log::fatal("setsockopt(SO_REUSEADDR): {}", std::strerror(errno));
    }
    if (bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
        log::fatal("bind {}: {}", opt.listen_address, std::strerror(errno));
    }
    if (listen(fd.get(), SOMAXCONN) != 0) {
        log::fatal("listen {}: {}", opt.listen_address, std::strerror(errno));
    }
    listen_fds.push_back(fd.get());
    own_listeners.push_back(std::move(fd));
}

void Server::Impl::drop_privileges(const std::string& queue_dir)
{
    // Postfix's order: group and supplementary groups while still root,
    // then the jail, then the user id, after which none of it can be
    // undone. Each step is checked: running on as root by mistake is
    // the one failure that must never pass silently.
    passwd* pw = nullptr;
    std::string owner;
    if (opt.unprivileged) {
        owner = config.str("mail_owner");
        errno = 0;
        pw = getpwnam(owner.c_str());
        if (!pw) {
            log::fatal("mail_owner: unknown user name: {}", owner);
        }
        if (pw->pw_uid == 0 || pw->pw_gid == 0) {
            log::fatal("mail_owner {} has user or group ID 0: refusing to "
                       "run with root privileges",
                       owner);
        }
        if (setgid(pw->pw_gid) != 0) {
            log::fatal("setgid({}): {}", pw->pw_gid, std::strerror(errno));
        }
        if (initgroups(owner.c_str(), pw->pw_gid) != 0) {
            log::fatal("initgroups({}, {}): {}", owner, pw->pw_gid,
                       std::strerror(errno));
        }
    }
    if (opt.chroot) {
        if (chroot(queue_dir.c_str()) != 0) {
            log::fatal("chroot({}): {}", queue_dir, std::strerror(errno));
        }
        if (chdir("/") != 0) {
            log::fatal("chdir(\"/\") in chroot: {}", std::strerror(errno));
        }
    }
    if (pw) {
        uid_t uid = pw->pw_uid;
        if (setuid(uid) != 0) {
            log::fatal("setuid({}): {}", uid, std::strerror(errno));
        }

        // setuid() as root changes every id; make sure it did.
        if (getuid() != uid || geteuid() != uid) {
            log::fatal("setuid({}) left uid {} euid {}", uid, getuid(),
                       geteuid());
        }
    }
}

void Server::Impl::setup_events()
{
    // Listeners must never block us: another process may take the
    // connection between our wake-up and our accept().
    for (int fd : listen_fds) {
        if (!set_nonblocking(fd)) {
            log::fatal("fcntl(fd {}, O_NONBLOCK): {}", fd,
                       std::strerror(errno));
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        log::fatal("epoll_create1: {}", std::strerror(errno));
    }
    accept_ep.reset(ep);
    accept_event.reset(
        event_new(base, ep, EV_READ | EV_PERSIST, accept_cb, this));
    if (!accept_event || event_add(accept_event.get(), nullptr) != 0) {
        log::fatal("cannot watch the listeners");
    }

    // fd 5 turns readable (EOF) when master closes its end: reload/stop.
    if (mode == Mode::master) {
        status_event.reset(
            event_new(base, kStatusFd, EV_READ, status_cb, this));
        if (!status_event || event_add(status_event.get(), nullptr) != 0) {
            log::fatal("cannot watch the master status channel");
        }
        // Also in the listeners' set, so that an idle process asleep
        // there wakes when master goes away (status_cb takes it out).
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = kStatusFd;
        if (epoll_ctl(accept_ep.get(), EPOLL_CTL_ADD, kStatusFd, &e) == 0) {
            status_in_ep = true;
        }
    }
    idle_timer.reset(evtimer_new(base, idle_cb, this));
    backoff_timer.reset(evtimer_new(base, backoff_cb, this));
    if (!idle_timer || !backoff_timer) {
        log::fatal("evtimer_new failed");
    }
    update();
}

void Server::Impl::update()
{
    if (done) {
        return;
    }

    // master forks another process when none is available; so tell it
    // TAKEN as soon as we can take no more clients, whether because we
    // are full or because we are draining, and AVAIL once we can again.
    bool full = active() >= session_limit;
    bool busy = full || self.draining_;
    if (busy != taken) {
        send_status(!busy);
    }

    // Listen while there is room, unless we are leaving or backing off
    // after an accept() failure.
    set_listening(!busy && !evtimer_pending(backoff_timer.get(), nullptr));

    // max_idle runs only while nothing is going on.
    if (active() == 0 && max_idle > 0 && !self.draining_) {
        if (!evtimer_pending(idle_timer.get(), nullptr)) {
            timeval tv{static_cast<time_t>(max_idle), 0};
            evtimer_add(idle_timer.get(), &tv);
        }
    } else {
        evtimer_del(idle_timer.get());
    }
}

void Server::Impl::set_listening(bool want)
{
    // EPOLLEXCLUSIVE cannot be changed on a registered descriptor, so
    // listening on and off is adding and removing. A kernel without it
    // (before Linux 4.5) gets a plain registration: every waiting process
    // wakes per client, and all but one find nothing to accept.
    if (want == listening || !accept_ep) {
        return;
    }
    for (int fd : listen_fds) {
        if (want) {
            epoll_event e{};
            e.events = EPOLLIN | EPOLLEXCLUSIVE;
            e.data.fd = fd;
            if (epoll_ctl(accept_ep.get(), EPOLL_CTL_ADD, fd, &e) != 0) {
                e.events = EPOLLIN;
                if (epoll_ctl(accept_ep.get(), EPOLL_CTL_ADD, fd, &e) != 0
                    && errno != EEXIST) {
                    log::fatal("epoll_ctl add listener fd {}: {}", fd,
                               std::strerror(errno));
                }
            }
        } else if (epoll_ctl(accept_ep.get(), EPOLL_CTL_DEL, fd, nullptr) != 0
                   && errno != ENOENT) {
            log::fatal("epoll_ctl remove listener fd {}: {}", fd,
                       std::strerror(errno));
        }
    }
    listening = want;
}

void Server::Impl::idle_wait()
{
    // Block on the listeners' set itself: only a task waiting there
    // directly counts for EPOLLEXCLUSIVE. What woke us (a client, fd 5)
    // is left for the event loop to find.
    epoll_event e[4];
    int n;
    do {
        n = epoll_wait(accept_ep.get(), e, 4, kIdleWaitMs);
    } while (n < 0 && errno == EINTR);
}

void Server::Impl::on_accept_ep()
{
    // Which listeners are ready; fd 5 is status_cb's business.
    epoll_event e[16];
    int n = epoll_wait(accept_ep.get(), e, 16, 0);
    for (int i = 0; i < n && !done; ++i) {
        int fd = e[i].data.fd;
        // A burst of clients (a thousand at once, say) is taken in
        // batches, not one per turn of the loop behind every session's
        // events; a process that is full stops at once.
        for (int k = 0; k < kAcceptBatch && !done && fd != kStatusFd
                        && listening && on_listen_ready(fd);
             ++k) {
        }
    }
}

void Server::Impl::send_status(bool avail)
{
    taken = !avail;
    if (mode != Mode::master || master_gone) {
        return;
    }

    // One write of the whole record; master ignores partial ones. A
    // failure means master is gone, and we should be too.
    std::string msg = master_status_message(getpid(), generation, avail);
    ssize_t n;
    do {
        n = write(kStatusFd, msg.data(), msg.size());
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(msg.size())) {
        if (log::verbose()) {
            log::info("master status write: {}",
                      n < 0 ? std::strerror(errno) : "short write");
        }
        master_gone = true;
        self.draining_ = true;
    }
}

void Server::Impl::detach_to_drain()
{
    // After a reload master still counts this process as available until
    // it exits (only a busy process had said TAKEN), and so would start no
    // new process for new clients while our sessions go on. Do what
    // Postfix's multi-client servers do when they drain: the parent
    // exits now, which master sees, and a child finishes the sessions
    // outside master's bookkeeping (still in its process group, so that
    // "postfix stop" reaches it).
    pid_t pid = fork();
    if (pid < 0) {
        log::warning("fork to finish sessions after master disconnect: {}; "
                     "finishing them in this process",
                     std::strerror(errno));
        return;
    }
    if (pid > 0) {
        _exit(0);
    }

    // The child: libevent's kernel state is shared with the parent until
    // re-initialised; the listeners belong to the new processes now.
    if (event_reinit(base) != 0) {
        log::fatal("event_reinit after fork failed");
    }
    accept_event.reset();
    accept_ep.reset(); // our copy; the set itself goes with the parent
    status_in_ep = false;
    listening = false;
    for (int fd : listen_fds) {
        close(fd);
    }
    listen_fds.clear();
    own_listeners.clear();
    close(kStatusFd);
}

void Server::Impl::maybe_exit()
{
    if (self.draining_ && active() == 0) {
        finish(0);
    }
}

void Server::Impl::finish(int status)
{
    if (done) {
        return;
    }

    // As Postfix's skeleton does, the last session's end is reported
    // before we go, so that master counts the use.
    if (taken) {
        send_status(true);
    }
    done = true;
    exit_status = status;
    accept_event.reset();
    status_event.reset();
    idle_timer.reset();
    backoff_timer.reset();
    passes.clear();
    event_base_loopbreak(base);
}

bool Server::Impl::on_listen_ready(int fd)
{
    if (done || self.draining_ || active() >= session_limit) {
        update();
        return false;
    }

    // No accept lock (see the top of this file): the listener is
    // non-blocking, and a process that loses the race sees EAGAIN.
    int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int err = errno;

    // Losing the race to another process, or a client that gave up
    // before we got to it, is normal.
    if (c < 0) {
        switch (err) {
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
        case EINTR:
            return false;
        case ECONNABORTED:
        case EPROTO:
            return true; // that one is gone; the next may be there
        default:
            // Out of descriptors and the like: say so, and give the
            // system a moment rather than retrying in a tight loop.
            log::warning("accept connection: {}", std::strerror(err));
            timeval tv = millis(kAcceptBackoffMs);
            evtimer_add(backoff_timer.get(), &tv);
            update();
            return false;
        }
    }
    Fd client(c);
    if (opt.transport == "pass") {
        start_pass(std::move(client));
        return true;
    }
    begin_session(std::move(client), conn_info_of_socket(c));
    return true;
}

void Server::Impl::begin_session(Fd client, ConnInfo info)
{
    // Count the session first: TAKEN must reach master before we serve,
    // and the hook may end the session before it returns.
    ++self.sessions_;
    update();
    hooks.on_session(std::move(client), std::move(info));
}

void Server::Impl::start_pass(Fd conn)
{
    // A hand-off counts toward the limit from the accept on: the client
    // it carries is already waiting for its banner.
    auto p = std::make_unique<PassConn>();
    p->impl = this;
    p->conn = std::move(conn);
    p->ev.reset(
        event_new(base, p->conn.get(), EV_READ | EV_PERSIST, pass_cb, p.get()));
    timeval tv{kPassTimeoutSeconds, 0};
    if (!p->ev || event_add(p->ev.get(), &tv) != 0) {
        log::warning("pass: cannot watch the hand-off connection");
        return;
    }
    ++pending;
    passes.push_front(std::move(p));
    passes.front()->self = passes.begin();
    update();
}

void Server::Impl::drop_pass(PassConn* p, const std::string& why)
{
    log::warning("pass: {}", why);
    passes.erase(p->self);
    --pending;
    update();
    maybe_exit();
}

void Server::Impl::on_pass_ready(PassConn* p, short what)
{
    if (what & EV_TIMEOUT) {
        drop_pass(p, "timeout while receiving the client connection");
        return;
    }

    // First the descriptor, which comes with one dummy data byte, read
    // alone so that no attribute byte after it is lost.
    if (!p->client) {
        char byte = 0;
        iovec iov{&byte, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        ssize_t n = recvmsg(p->conn.get(), &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            drop_pass(p, n == 0
                             ? std::string("connection closed before the "
                                           "descriptor arrived")
                             : std::string("recvmsg: ") + std::strerror(errno));
            return;
        }
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS
            || cm->cmsg_len != CMSG_LEN(sizeof(int))
            || (msg.msg_flags & MSG_CTRUNC)) {
            drop_pass(p, "no descriptor in the hand-off message");
            return;
        }
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        p->client.reset(fd);
        if (!set_nonblocking(fd)) {
            drop_pass(p, std::string("fcntl(O_NONBLOCK): ")
                             + std::strerror(errno));
            return;
        }
    }

    // Then the attributes, up to the limit; scan0 says when the list is
    // whole.
    char chunk[1024];
    for (;;) {
        size_t room = kPassAttrLimit + 1 - p->buf.size();
        ssize_t n = read(p->conn.get(), chunk, std::min(sizeof(chunk), room));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            drop_pass(p, n == 0 ? std::string("connection closed before the "
                                              "attributes ended")
                                : std::string("read: ") + std::strerror(errno));
            return;
        }
        p->buf.append(chunk, static_cast<size_t>(n));
        if (p->buf.size() > kPassAttrLimit) {
            break;
        }
    }
    auto scanned = attr::scan0(p->buf, kPassAttrLimit);
    if (!scanned) {
        drop_pass(p, "bad attributes: " + scanned.error().text);
        return;
    }
    if (!*scanned) {
        if (p->buf.size() > kPassAttrLimit) {
            drop_pass(p, "attributes longer than the limit");
        }
        return;
    }
    auto info = conn_info_of_pass_attrs((*scanned)->list);
    if (!info) {
        drop_pass(p, info.error().text);
        return;
    }

    // The hand-off connection has done its job; the client is a session.
    Fd client = std::move(p->client);
    passes.erase(p->self);
    --pending;
    begin_session(std::move(client), std::move(*info));
}

} // namespace rs::mail
