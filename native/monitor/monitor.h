// The per-container monitor: owns the container's stdio, the json-file log, the exit status
// and the `ms` socket. Single-threaded poll() loop; SIGCHLD arrives through a signalfd.
//
// Life cycle (phase):
//   kCreating  skiff-init started, waiting for `ready` (or `error`)
//   kCreated   ready reported; waiting for `start`
//   kRunning   `start` forwarded and the sync socket hit EOF (execve succeeded)
//   kExited    the container process was reaped; draining its output (at most kDrainMs)
//   kFinished  exit.json written, waiters answered, `ms` removed; flushing the last replies
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "monitor/attach.h"
#include "monitor/container_io.h"
#include "monitor/log_writer.h"

namespace skiff::monitor {

struct Options {
  std::string bundle;  // absolute
  int init_fd = -1;    // a sealed memfd of skiff-init (common/sealed_exe.h), CLOEXEC
  std::string mode;    // create | exec
  bool tty = false;
  bool open_stdin = false;
  bool stdin_once = false;
  std::string log_path;
  int64_t log_max_size = 0;
  int log_max_file = 1;
  LogWriter::Format log_format = LogWriter::Format::kJson;
  std::vector<std::string> log_attrs;       // local format: attrs of every entry
  std::string journal_socket;               // journald: the journal's socket; empty = none
  std::vector<std::string> journal_fields;  // journald: KEY=VALUE sent with every entry
  std::string oom_file;
};

class Monitor {
 public:
  explicit Monitor(Options opts);
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Listens on <bundle>/ms, writes monitor.pid, opens the log, prepares the stdio and
  // starts skiff-init. report_fd receives one line, "ready <monitorpid> <containerpid>" or
  // "error <json>", when the init reports. Throws SysError.
  void start(UniqueFd report_fd);
  // Serves until the process has exited and everything is recorded.
  void run();

 private:
  enum class Phase { kCreating, kCreated, kRunning, kExited, kFinished };
  enum class Src { kListen, kSignal, kSync, kStdout, kStderr, kMaster, kStdinW, kClient };

  // setup
  void listen_socket();
  // loop
  void on_accept();
  void sweep_clients();
  void on_signal();
  void drain_sync();
  void on_sync_message(std::string msg);
  void on_sync_eof();
  void on_output(int stream, int fd);
  // a holding attach client's queue is too full for another chunk of output
  bool attach_backlogged() const;
  void deliver(int stream, const char* data, size_t len);
  void on_client(Client& c, short revents);
  void client_read(Client& c);
  void client_flush(Client& c);
  void run_command(Client& c, std::string line, std::string rest);
  void command(Client& c, const std::vector<std::string>& w, std::string& rest);
  void feed_stdin(const char* data, size_t len);
  void write_stdin();
  void on_stdin_eof(Client& c);
  bool stdin_accepting() const;
  // life cycle
  void on_ready();
  void set_error(std::string json);
  void on_init_exit(int status);
  void on_container_exit(int status);
  void finalize();
  bool outputs_done() const;
  void report(const std::string& line);
  void reply(Client& c, const std::string& json);
  void reply_error(Client& c, const std::string& message);
  void write_state();
  std::string state_json() const;
  std::string exit_json() const;
  int64_t now_ms() const;

  Options opts_;
  pid_t self_pid_ = 0;
  std::string sock_path_;
  UniqueFd listen_, sigfd_, sync_, report_;
  ContainerIo io_;
  LogWriter log_;
  std::vector<std::unique_ptr<Client>> clients_;

  Phase phase_ = Phase::kCreating;
  pid_t init_pid_ = -1;
  pid_t container_pid_ = -1;
  bool ready_seen_ = false;
  bool start_sent_ = false;
  bool exec_ok_ = false;
  std::string error_json_;     // the init's (or our) error, a JSON object; empty if none
  std::string error_message_;  // its "message"
  std::string started_at_, finished_at_;
  int exit_code_ = 0;
  int exit_signal_ = 0;
  bool oom_killed_ = false;
  long long oom_baseline_ = 0;
  std::vector<std::pair<pid_t, int>> early_reaped_;  // reaped before `pid N` arrived

  bool out_eof_[2] = {false, false};
  std::string stdin_buf_;
  size_t stdin_off_ = 0;
  bool stdin_close_pending_ = false;  // --stdin-once: close the pipe once the buffer is written
  bool stdin_closed_ = false;

  int64_t drain_deadline_ = 0;
  int64_t final_deadline_ = 0;
  int64_t kill_deadline_ = 0;
};

}  // namespace skiff::monitor
