#include "addon/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {
namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// The registers: r1 is the context (struct bpf_cgroup_dev_ctx: access_type, major, minor).
constexpr uint8_t kCtx = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kTmp = 6, kRet = 0;

bpf_insn load_ctx_word(uint8_t dst, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, kCtx, off, 0); }
bpf_insn mov_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn and_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
bpf_insn rsh_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm); }
bpf_insn jne_imm(uint8_t dst, int32_t imm, int16_t off) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm); }
bpf_insn mov_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

long parse_number(const std::string& s, const std::string& rule) {
  if (s == "*") return -1;
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9)
    throw std::invalid_argument("invalid device rule \"" + rule + "\"");
  return std::stol(s);
}

long bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

DeviceRule parse_device_rule(const std::string& text) {
  DeviceRule r{};
  if (text == "a") {
    r.type = 'a';
    r.access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    return r;
  }
  // "<type> <major>:<minor> <access>"
  size_t sp1 = text.find(' '), colon = text.find(':'), sp2 = text.rfind(' ');
  if (text.size() < 7 || sp1 != 1 || colon == std::string::npos || sp2 <= colon || colon <= sp1)
    throw std::invalid_argument("invalid device rule \"" + text + "\"");
  r.type = text[0];
  if (r.type != 'a' && r.type != 'b' && r.type != 'c')
    throw std::invalid_argument("invalid device rule \"" + text + "\"");
  r.major = parse_number(text.substr(sp1 + 1, colon - sp1 - 1), text);
  r.minor = parse_number(text.substr(colon + 1, sp2 - colon - 1), text);
  r.access = 0;
  std::string acc = text.substr(sp2 + 1);
  if (acc.empty()) throw std::invalid_argument("invalid device rule \"" + text + "\"");
  for (char c : acc) {
    if (c == 'r') r.access |= BPF_DEVCG_ACC_READ;
    else if (c == 'w') r.access |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm') r.access |= BPF_DEVCG_ACC_MKNOD;
    else throw std::invalid_argument("invalid device rule \"" + text + "\"");
  }
  return r;
}

std::vector<bpf_insn> compile_device_filter(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p;
  // type = access_type & 0xffff, access = access_type >> 16, then major, minor
  p.push_back(load_ctx_word(kType, offsetof(bpf_cgroup_dev_ctx, access_type)));
  p.push_back(mov_reg(kAccess, kType));
  p.push_back(and_imm(kType, 0xffff));
  p.push_back(rsh_imm(kAccess, 16));
  p.push_back(load_ctx_word(kMajor, offsetof(bpf_cgroup_dev_ctx, major)));
  p.push_back(load_ctx_word(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)));
  constexpr unsigned kAll = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  for (const auto& r : rules) {
    // each test jumps past the rest of this rule's block when it does not hold
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;
    if (r.type != 'a') {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kType, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
    }
    if ((r.access & kAll) != kAll) {
      // every requested access must be one the rule grants
      block.push_back(mov_reg(kTmp, kAccess));
      block.push_back(and_imm(kTmp, static_cast<int32_t>(~r.access & kAll)));
      jumps.push_back(block.size());
      block.push_back(jne_imm(kTmp, 0, 0));
    }
    if (r.major >= 0) {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kMajor, static_cast<int32_t>(r.major), 0));
    }
    if (r.minor >= 0) {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kMinor, static_cast<int32_t>(r.minor), 0));
    }
    block.push_back(mov_imm(kRet, 1));
    block.push_back(exit_insn());
    for (size_t j : jumps) block[j].off = static_cast<int16_t>(block.size() - j - 1);
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(mov_imm(kRet, 0));
  p.push_back(exit_insn());
  return p;
}

void attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = compile_device_filter(rules);
  static const char kLicense[] = "Apache-2.0";
  auto load = [&](char* log, uint32_t log_size) {
    bpf_attr a{};
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = reinterpret_cast<uint64_t>(prog.data());
    a.insn_cnt = static_cast<uint32_t>(prog.size());
    a.license = reinterpret_cast<uint64_t>(kLicense);
    a.log_buf = reinterpret_cast<uint64_t>(log);
    a.log_size = log_size;
    a.log_level = log ? 1 : 0;
    return static_cast<int>(bpf(BPF_PROG_LOAD, &a));
  };
  UniqueFd prog_fd(load(nullptr, 0));
  if (!prog_fd.valid()) {
    int err = errno;
    // once more with the verifier's log, for the message (a log on success costs time, and
    // fails with ENOSPC when the buffer is too small for it)
    std::vector<char> log(1 << 16);
    UniqueFd again(load(log.data(), static_cast<uint32_t>(log.size())));
    std::string why = log[0] ? std::string(": ") + log.data() : "";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw SysError("bpf(BPF_PROG_LOAD)", "device filter for " + cgroup_dir + why, err);
  }
  UniqueFd cg(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.valid()) throw SysError("open", cgroup_dir, errno);
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cg.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  // the attachment keeps the program alive once our fd is closed; it goes with the cgroup
  if (bpf(BPF_PROG_ATTACH, &attach) < 0)
    throw SysError("bpf(BPF_PROG_ATTACH)", "device filter to " + cgroup_dir, errno);
}

}  // namespace skiff
