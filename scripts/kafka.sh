#!/usr/bin/env bash
# A single-node Apache Kafka broker on 127.0.0.1, for weir's Kafka tests and for trying the
# Kafka connector by hand. The broker is Apache Kafka itself (KRaft mode, its own controller),
# fetched from Maven Central by scripts/kafka/pom.xml into a cache under $HOME.
#
#   scripts/kafka.sh start [--until-exit-of PID]
#       Formats a fresh broker and starts it; returns once it accepts requests and prints its
#       bootstrap address. Already running on that port: prints the address and does nothing.
#       With --until-exit-of, the broker is stopped when process PID exits (test fixtures
#       pass their own process, so the broker never outlives the tests).
#   scripts/kafka.sh stop
#       Stops the broker on that port and deletes its data.
#   scripts/kafka.sh tool NAME ARGS...
#       Runs one of Kafka's command-line tools: topics, consumer-groups, console-consumer,
#       console-producer (as kafka-NAME.sh would), e.g.
#       scripts/kafka.sh tool consumer-groups --bootstrap-server 127.0.0.1:9092 --describe --all-groups
#
# Environment: WEIR_KAFKA_PORT (default 9092; the controller listens on the port after it),
# WEIR_KAFKA_HOME (default ~/.cache/weir/kafka-VERSION: the jars, and a folder per running
# broker). Needs Java 17 and Maven (scripts/setup.sh installs them where they are missing).
set -euo pipefail

script_dir="$(cd "$(dirname "$0")" && pwd)"
pom="$script_dir/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
port="${WEIR_KAFKA_PORT:-9092}"
controller_port=$((port + 1))
home="${WEIR_KAFKA_HOME:-$HOME/.cache/weir/kafka-$version}"
libs="$home/libs"
run_dir="$home/broker-$port"
address="127.0.0.1:$port"

die() { echo "kafka.sh: $*" >&2; exit 1; }

# The jars, fetched once. Maven writes into a temporary folder first so that an interrupted
# download is never mistaken for a complete one.
fetch_jars() {
    [ -f "$libs/.complete" ] && return
    command -v java >/dev/null || die "java is not installed (run scripts/setup.sh)"
    command -v mvn >/dev/null || die "mvn is not installed (run scripts/setup.sh)"
    echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $libs" >&2
    rm -rf "$libs.partial"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs.partial" >&2 ||
        die "Maven could not fetch org.apache.kafka:kafka_2.13:$version (see above)"
    touch "$libs.partial/.complete"
    rm -rf "$libs"
    mv "$libs.partial" "$libs"
}

kafka_java() {
    java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -cp "$libs/*" "$@"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running_pid() {
    local pid
    pid="$(cat "$run_dir/pid" 2>/dev/null)" || return 1
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    local until_exit_of=""
    if [ "${1:-}" = "--until-exit-of" ]; then
        until_exit_of="${2:?--until-exit-of needs a process id}"
    fi
    fetch_jars
    if running_pid >/dev/null && port_open "$port"; then
        echo "$address"
        return
    fi
    if port_open "$port"; then
        die "port $port is taken by another program; set WEIR_KAFKA_PORT to a free port"
    fi
    rm -rf "$run_dir"
    mkdir -p "$run_dir/data"
    cat >"$run_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://$address,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://$address
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run_dir/data
num.partitions=1
# One broker: the internal topics (offsets, transactions) have one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# Records of any age are kept: Nexmark events and the tests' records carry event times years
# old as their timestamps, which time-based retention (7 days by default) would delete.
log.retention.ms=-1
# Tests abort transactions on purpose; the broker finds abandoned ones quickly.
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
EOF
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid | tail -n 1)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$run_dir/server.properties" \
        >"$run_dir/format.log" 2>&1 || die "formatting the broker's storage failed: $(cat "$run_dir/format.log")"
    nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true -cp "$libs/*" \
        kafka.Kafka "$run_dir/server.properties" >"$run_dir/broker.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$run_dir/pid"
    # Up when the broker answers a metadata request, not merely when its port opens.
    local deadline=$((SECONDS + 90))
    until port_open "$port" &&
        kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$address" --list \
            >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null ||
            die "the broker exited while starting; its log ($run_dir/broker.log) ends: $(tail -n 20 "$run_dir/broker.log")"
        [ $SECONDS -lt $deadline ] || { kill "$pid"; die "the broker did not answer on $address within 90 s"; }
        sleep 0.5
    done
    if [ -n "$until_exit_of" ]; then
        # A watcher outside this shell's process group: it stops the broker once the given
        # process has gone, however it ended.
        setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop' \
            _ "$until_exit_of" "$script_dir/kafka.sh" >/dev/null 2>&1 </dev/null &
    fi
    echo "$address"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid"
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$run_dir"
}

tool() {
    local name="${1:?tool needs a name: topics, consumer-groups, console-consumer, console-producer}"
    shift
    local class
    case "$name" in
        topics) class=org.apache.kafka.tools.TopicCommand ;;
        consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
        console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
        *) die "unknown tool '$name' (topics, consumer-groups, console-consumer, console-producer)" ;;
    esac
    fetch_jars
    kafka_java "$class" "$@"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    tool) shift; tool "$@" ;;
    *) die "usage: scripts/kafka.sh start [--until-exit-of PID] | stop | tool NAME ARGS..." ;;
esac
