#!/usr/bin/env python3
"""The completion scripts (bash, zsh, fish) against the CLI's own command table.

`stargate __commands` prints the table (global options, then each command and its
options); every script must offer every command, and each command's options where that
command is being completed, so that a command or option added to the CLI without its
completion fails this test. zsh and fish also check each script's syntax (`zsh -n`,
`fish --no-execute`). Usage: completions_test.py STARGATE_BINARY COMPLETIONS_DIR
"""
import re
import subprocess
import sys

binary, folder = sys.argv[1], sys.argv[2]
table = subprocess.run([binary, "__commands"], capture_output=True, text=True, check=True).stdout
global_options, commands = [], {}
for line in table.splitlines():
    name, *options = line.split()
    if name == "-":
        global_options = options
    else:
        commands[name] = options
assert len(commands) >= 9 and "--socket" in global_options, table

problems = []


def need(where, text, option):
    if option not in text:
        problems.append(f"{where}: {option} is not offered")


def branches(text, pattern):
    """case branches: (the names of their pattern, their body)."""
    found = []
    for match in re.finditer(pattern, text, re.M):
        names = [n.strip() for n in match.group(1).split("|")]
        body_end = text.find(";;", match.end())
        found.append((names, text[match.end():body_end]))
    return found


def branch_for(where, found, command):
    bodies = [body for names, body in found if command in names]
    if not bodies:
        problems.append(f"{where}: no branch completes '{command}'")
        return ""
    return bodies[0]


# bash: the `commands` word list, the `global` options, one case branch per command.
bash = open(f"{folder}/stargate").read()
listed = re.search(r'local commands="([^"]*)"', bash).group(1).split()
if sorted(listed) != sorted(commands):
    problems.append(f"bash: commands {sorted(listed)} differ from {sorted(commands)}")
bash_global = re.search(r'local global="([^"]*)"', bash).group(1).split()
for option in global_options:
    if option.startswith("--"):
        need("bash global", bash_global, option)
bash_branches = branches(bash, r"^\s{4}([a-z_ |]+)\)")
for command, options in commands.items():
    body = branch_for("bash", bash_branches, command)
    for option in options:
        if option.startswith("--"):
            need(f"bash {command}", body, option)

# zsh: the `commands` descriptions, the global _arguments, one branch per command; "$help"
# and "$timeout" stand for their definitions.
zsh = open(f"{folder}/_stargate").read()
described = re.findall(r"^\s+['\"]([a-z]+):", zsh, re.M)
if sorted(described) != sorted(commands):
    problems.append(f"zsh: commands {sorted(described)} differ from {sorted(commands)}")
help_text, timeout_text = "-h --help", "--timeout"
zsh_global = zsh[zsh.find("# global"):zsh.find("'1:command:->command'")]
zsh_global = zsh_global.replace('"$help"', help_text)
for option in global_options:
    need("zsh global", zsh_global, option.lstrip("-") if len(option) == 2 else option)
zsh_branches = branches(zsh, r"^\s{8}([a-z_|]+)\)")
for command, options in commands.items():
    body = branch_for("zsh", zsh_branches, command)
    body = body.replace('"$help"', help_text).replace('"$timeout"', timeout_text)
    for option in options:
        need(f"zsh {command}", body, option)

# fish: `complete` lines, by the commands their condition names.
fish = open(f"{folder}/stargate.fish").read()
fish_commands = re.search(r"^set -l commands (.*)$", fish, re.M).group(1).split()
if sorted(fish_commands) != sorted(commands):
    problems.append(f"fish: commands {sorted(fish_commands)} differ from {sorted(commands)}")
offered = {command: set() for command in commands}
global_offered, named = set(), set()
for line in fish.splitlines():
    if not line.startswith("complete -c stargate -n"):
        continue
    condition = re.search(r"-n (['\"])(.*?)\1", line).group(2)
    flags = {"--" + n for n in re.findall(r" -l (\S+)", line)} | {
        "-" + n for n in re.findall(r" -s (\S+)", line)}
    if condition.startswith("not __fish_seen_subcommand_from $commands"):
        global_offered |= flags
        named |= set(re.findall(r" -a (\w+) ", line))
        continue
    targets = condition.replace("__fish_seen_subcommand_from", "").split()
    if targets == ["$commands"]:
        targets = list(commands)
    for target in targets:
        if target in offered:
            offered[target] |= flags
for option in global_options:
    need("fish global", global_offered, option)
for command, options in commands.items():
    if command not in named:
        problems.append(f"fish: command {command} is not offered")
    for option in options:
        need(f"fish {command}", offered[command], option)

# What bash and fish actually offer after "stargate CMD --" (and "stargate --"), with the
# binary on PATH for the daemon questions.
import os
env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(binary)) + ":" + os.environ["PATH"])


def offered_by(shell, words):
    if shell == "bash":
        script = (f"source {folder}/stargate; COMP_WORDS=({' '.join(words)}); "
                  f"COMP_CWORD={len(words) - 1}; _stargate; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        run = ["bash", "-c", script]
    else:
        run = ["fish", "-c", f"source {folder}/stargate.fish; complete -C '{' '.join(words)}'"]
    out = subprocess.run(run, capture_output=True, text=True, env=env).stdout
    return {line.split("\t")[0] for line in out.splitlines()}


for shell in ("bash", "fish"):
    got = offered_by(shell, ["stargate", "--"])
    for option in global_options:
        if option.startswith("--"):
            need(f"{shell} (run) global", got, option)
    got = offered_by(shell, ["stargate", ""])
    for command in commands:
        need(f"{shell} (run) commands", got, command)
    for command, options in commands.items():
        got = offered_by(shell, ["stargate", command, "--"])
        for option in options:
            if option.startswith("--"):
                need(f"{shell} (run) {command}", got, option)

# Syntax, where the shells are installed (scripts/bootstrap installs both).
for shell, args, path in (("zsh", ["-n"], "_stargate"), ("fish", ["--no-execute"], "stargate.fish")):
    try:
        checked = subprocess.run([shell, *args, f"{folder}/{path}"], capture_output=True, text=True)
    except FileNotFoundError:
        problems.append(f"{shell} is not installed: run scripts/bootstrap")
        continue
    if checked.returncode != 0:
        problems.append(f"{shell}: {path}: {checked.stderr.strip()}")

for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{len(commands)} commands and their options are offered by bash, zsh and fish")
