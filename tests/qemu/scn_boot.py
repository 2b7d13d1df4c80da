"""Boot scenarios: both boot paths, both machines, big memory, a deliberate fault, input."""
from harness import EXIT_FAIL, Scenario


def type_a_line(q):
    q.wait_for(r"READY FOR INPUT")
    q.send("hello-vio\r")


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
]
