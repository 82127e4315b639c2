# fish completion for stargate(1): commands, options, process types and local ids.
# Installed as /usr/share/fish/vendor_completions.d/stargate.fish. Kept in step with the
# command table (`stargate __commands`) by tests/cli/completions_test.py.

function __stargate_ask
    # The --socket given on the command line, if any, then the daemon's answer.
    set -l tokens (commandline -opc)
    set -l socket
    for i in (seq (count $tokens))
        if test "$tokens[$i]" = --socket; and test $i -lt (count $tokens)
            set socket --socket $tokens[(math $i + 1)]
        end
    end
    stargate $socket __complete $argv[1] 2>/dev/null
end

set -l commands submit status wait list result retry cancel queue health
complete -c stargate -f

# Global options, before the command.
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -l socket -r -F -d "stargated's socket"
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -l json -d 'Print one JSON document on stdout'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -s q -l quiet -d 'Print nothing but results and errors'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -s h -l help -d 'Show help'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -l version -d 'Show the version'

# The commands.
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a submit -d 'Queue a request for a process of TYPE'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a status -d 'Show a process'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a wait -d 'Wait until processes end'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a list -d 'List processes, newest first'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a result -d 'Print the result JSON of a completed process'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a retry -d 'Start a new attempt of a retryable failure'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a cancel -d 'Withdraw a request still queued'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a queue -d 'Show what waits to be sent'
complete -c stargate -n "not __fish_seen_subcommand_from $commands" -a health -d "Show the daemon's health"

# Every command's --help.
complete -c stargate -n "__fish_seen_subcommand_from $commands" -s h -l help -d 'Show help'

# submit TYPE [--data JSON | --data-file FILE] [--id ID] [--wait [--timeout DUR]]
complete -c stargate -n '__fish_seen_subcommand_from submit' -a '(__stargate_ask types)' -d 'Process type'
complete -c stargate -n '__fish_seen_subcommand_from submit' -l data -x -d 'The data as JSON'
complete -c stargate -n '__fish_seen_subcommand_from submit' -l data-file -r -F -d 'Read the data from FILE (- for standard input)'
complete -c stargate -n '__fish_seen_subcommand_from submit' -l id -x -d 'clientProcessId to use'
complete -c stargate -n '__fish_seen_subcommand_from submit' -l wait -d 'Follow the process to its end'
complete -c stargate -n '__fish_seen_subcommand_from submit' -l timeout -x -a '30s 5m 15m 1h' -d 'Stop waiting after DUR'

# status, result, retry, cancel, wait: local ids.
complete -c stargate -n '__fish_seen_subcommand_from status result retry cancel wait' -a '(__stargate_ask ids)' -d 'clientProcessId'
complete -c stargate -n '__fish_seen_subcommand_from wait' -l timeout -x -a '30s 5m 15m 1h' -d 'Stop waiting after DUR'

# list [--state STATE] [--type TYPE] [--limit N]
complete -c stargate -n '__fish_seen_subcommand_from list' -l state -x -a 'queued accepted processing completed failed rejected cancelled' -d 'Only this state'
complete -c stargate -n '__fish_seen_subcommand_from list' -l type -x -a '(__stargate_ask types)' -d 'Only this process type'
complete -c stargate -n '__fish_seen_subcommand_from list' -l limit -x -d 'At most N'

# queue [flush]
complete -c stargate -n '__fish_seen_subcommand_from queue' -a flush -d 'Send what is queued now'
