"""Boot scenarios: both boot paths, both machines, big memory, a deliberate fault, input, and
run-qemu.sh --kvm, which must fall back to TCG with one line wherever KVM cannot run the
kernel."""
import os
import re

from harness import BUILD, EXIT_FAIL, ROOT, Scenario


def type_a_line(q):
    q.wait_for(r"READY FOR INPUT")
    q.send("hello-vio\r")


def run_qemu_kvm(*env):
    """argv hook: ./run-qemu.sh --kvm as a user types it, plus QMP to ask QEMU what runs."""
    def argv(workdir):
        return ["env", "BUILD=" + BUILD] + list(env) + [
            os.path.join(ROOT, "run-qemu.sh"), "--kvm", "--direct", "--no-devices", "--",
            "-qmp", "unix:%s,server=on,wait=off" % os.path.join(workdir, "qmp.sock")]
    return argv


FALLBACK = (r"^run-qemu\.sh: KVM cannot run this kernel here \((.+)\); using TCG"
            r"(?:\. Details: \S+)?$")
USING_KVM = r"^run-qemu\.sh: using KVM \(the kernel's self-tests passed under it in [0-9.]+ s\)$"


def kvm_verdict_interact(reason=None):
    """One line from run-qemu.sh, no QEMU register dump, a shell that answers, and QEMU
    running what the line said; `reason`, when given, is the fallback's reason."""
    def interact(q):
        q.wait_for(r"vio> ", timeout=150)
        said = re.findall(r"^run-qemu\.sh: .*$", q.log, re.M)
        assert len(said) == 1, "run-qemu.sh printed %d lines: %r" % (len(said), said)
        fell_back = re.match(FALLBACK, said[0])
        assert fell_back or re.match(USING_KVM, said[0]), "unexpected verdict %r" % said[0]
        if reason is not None:
            assert fell_back and fell_back.group(1) == reason, "reason %r, want %r" % (
                said[0], reason)
        for dump in (r"KVM internal error", r"^RAX=", r"^Code="):
            assert not re.search(dump, q.log, re.M), "/%s/ reached the terminal" % dump
        assert "pages:" in q.shell("mem")
        enabled = q.qmp("query-kvm")["enabled"]
        assert enabled == (not fell_back), "the line says %r, QMP says KVM enabled=%s" % (
            said[0], enabled)
        print("    %s" % said[0])
        q.send("poweroff\r")
    return interact


SCENARIOS = [
    Scenario("boot-grub-q35", machine="q35", boot="grub",
             cmdline="vio.expect_input=hello-vio", interact=type_a_line,
             expect_log=[r"booted by GRUB", r"acpi: MCFG: ECAM 0x[0-9a-f]+",
                         r"ok \d+ - serial line input"]),
    Scenario("boot-direct-pc", machine="pc", boot="direct",
             expect_log=[r"booted by QEMU PVH", r"no MCFG"]),
    Scenario("boot-5g-ram", machine="q35", boot="direct", mem="5G",
             expect_log=[r"highest RAM 0x1[0-9a-f]{8}"]),
    Scenario("boot-5g-ram-grub-pc", machine="pc", boot="grub", mem="5G",
             expect_log=[r"highest RAM 0x1[0-9a-f]{8}"]),
    # The harness must see a kernel fault as a failure, with the report on the console.
    Scenario("fault-page-fault-reported", cmdline="vio.fault=pf", expect_exit=EXIT_FAIL,
             expect_log=[r"EXCEPTION 14: page fault", r"CR2 0x0+\b", r"backtrace: 0x"]),
    Scenario("fault-invalid-opcode-reported", machine="pc", cmdline="vio.fault=ud",
             expect_exit=EXIT_FAIL, expect_log=[r"EXCEPTION 6: invalid opcode"]),
    # KVM made unusable on purpose: the probe finds no device node.
    Scenario("kvm-unusable-falls-back-to-tcg", mode="shell",
             argv=run_qemu_kvm("VIO_KVM_DEVICE=/nonexistent/kvm"), expect_exit=0, timeout=180,
             interact=kvm_verdict_interact(reason="no /nonexistent/kvm")),
    # This machine's own KVM, whatever it is: where it cannot run the kernel (here: its
    # virtual CPU fails on the first SSE instruction; in CI: no /dev/kvm) the same one line,
    # where it can, one line saying so.
    Scenario("kvm-probe-boots-the-real-kernel", argv=run_qemu_kvm(), mode="shell",
             expect_exit=0, timeout=180, interact=kvm_verdict_interact()),
]
