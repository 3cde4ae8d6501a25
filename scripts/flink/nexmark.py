#!/usr/bin/env python3
"""Nexmark on Apache Flink, for weir's side-by-side benchmark (`weir bench nexmark --with-flink`).

    nexmark.py --query Q --events PATH --parallelism P [--count N]
    nexmark.py --list

Runs one query in a Flink mini cluster of its own (PyFlink starts the JVM) over the JSON lines
events that `weir nexmark generate` writes, with the results going to Flink's blackhole sink, as
weir's benchmark runs drop theirs. PATH is a file or a directory of files; Flink's filesystem
source reads each file as one split, so a directory of P files keeps P source tasks busy.

The last line of standard output is one JSON object:

    {"engine": "flink", "query": "q5", "parallelism": 2, "events": N, "wall_s": ...,
     "events_per_s": ..., "cpu_s": ..., "peak_memory_bytes": ...}

wall_s runs from the job's submission to its end (planning included, the JVM's start not),
net_runtime_s is Flink's own count of the job's run time (without planning and submission);
cpu_s is the JVM's CPU time over that span; peak_memory_bytes the JVM's largest resident size.

The setup is Nexmark's usual one for Flink: streaming mode, mini-batches of 2 s / 50,000 rows,
object reuse, heap state, no checkpoints, watermarks 4 s behind the largest event time. The SQL
of each query is the one weir's implementation documents (nexmark/src/queries/), written in
Flink's window table functions. q6 (OVER windows on an updating input), q12 and q13 (processing
time) and early-bids are left out: Flink cannot run the first, the others measure the clock.
"""
import argparse
import json
import os
import sys
import time

SIDE = "CASE event_type WHEN 0 THEN person.`dateTime` WHEN 1 THEN auction.`dateTime` ELSE bid.`dateTime` END"

EVENTS_TABLE = """
CREATE TABLE events (
  event_type INT,
  person ROW<id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING,
             state STRING, `dateTime` TIMESTAMP(3), extra STRING>,
  auction ROW<id BIGINT, itemName STRING, description STRING, initialBid BIGINT,
              reserve BIGINT, `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT,
              category BIGINT, extra STRING>,
  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
          `dateTime` TIMESTAMP(3), extra STRING>,
  `dateTime` AS %s,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
""" % SIDE

KINDS = {
    "person": (0, "id, name, emailAddress, creditCard, city, state, extra"),
    "auction": (1, "id, itemName, description, initialBid, reserve, expires, seller, category, extra"),
    "bid": (2, "auction, bidder, price, channel, url, extra"),
}


def kind_view(name):
    """A view of one kind of event: its fields, and the event-time column of the events."""
    event_type, fields = KINDS[name]
    columns = ", ".join("%s.%s AS %s" % (name, field.strip(), field.strip()) for field in fields.split(","))
    return "CREATE TEMPORARY VIEW %s AS SELECT %s, `dateTime` FROM events WHERE event_type = %d" % (
        name, columns, event_type)


def ranked_counts(column, suffix):
    """count(column) overall and per price rank, as Nexmark's q15-q17 name them."""
    ranks = [("rank1", "price < 10000"), ("rank2", "price >= 10000 AND price < 1000000"),
             ("rank3", "price >= 1000000")]
    counts = ["count(%s) AS total_%s" % (column, suffix)]
    counts += ["count(%s) FILTER (WHERE %s) AS %s_%s" % (column, test, rank, suffix) for rank, test in ranks]
    return ",\n  ".join(counts)


DAY = "DATE_FORMAT(`dateTime`, 'yyyy-MM-dd')"
STATISTICS = ",\n  ".join([ranked_counts("*", "bids"), ranked_counts("DISTINCT bidder", "bidders"),
                           ranked_counts("DISTINCT auction", "auctions")])
CLOSED_AUCTIONS = """
  SELECT A.id, A.category, A.seller, max(B.price) AS final
  FROM auction AS A JOIN bid AS B ON A.id = B.auction
  WHERE B.`dateTime` BETWEEN A.`dateTime` AND A.expires
  GROUP BY A.id, A.category, A.seller"""
HOT_ITEM_COUNTS = """
  SELECT auction, count(*) AS num, window_start, window_end
  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY auction, window_start, window_end"""
CHANNEL_ID = "REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)"

QUERIES = {
    "q0": "SELECT auction, bidder, price, `dateTime`, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, `dateTime`, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q3": """
SELECT P.name, P.city, P.state, A.id
FROM auction AS A JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')""",
    "q4": "SELECT category, avg(final) AS avg_final FROM (%s) GROUP BY category" % CLOSED_AUCTIONS,
    "q5": """
WITH counts AS (%s)
SELECT C.auction, C.num
FROM counts AS C
JOIN (SELECT window_start, window_end, max(num) AS most FROM counts GROUP BY window_start, window_end) AS M
  ON C.window_start = M.window_start AND C.window_end = M.window_end AND C.num >= M.most""" % HOT_ITEM_COUNTS,
    "q7": """
WITH windowed AS (
  SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)))
SELECT W.auction, W.price, W.bidder, W.`dateTime`, W.extra
FROM windowed AS W
JOIN (SELECT window_start, window_end, max(price) AS top FROM windowed GROUP BY window_start, window_end) AS T
  ON W.window_start = T.window_start AND W.window_end = T.window_end AND W.price = T.top""",
    "q8": """
SELECT P.id, P.name, P.window_start AS starttime
FROM (SELECT id, name, window_start, window_end
      FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
      GROUP BY id, name, window_start, window_end) AS P
JOIN (SELECT seller, window_start, window_end
      FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
      GROUP BY seller, window_start, window_end) AS A
  ON P.id = A.seller AND P.window_start = A.window_start AND P.window_end = A.window_end""",
    "q9": """
SELECT id, itemName, description, initialBid, reserve, `dateTime`, expires, seller, category, extra,
       auction, bidder, price, bid_dateTime, bid_extra
FROM (SELECT A.*, B.auction, B.bidder, B.price, B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
             ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
      FROM auction AS A JOIN bid AS B ON A.id = B.auction
      WHERE B.`dateTime` BETWEEN A.`dateTime` AND A.expires)
WHERE rownum <= 1""",
    "q10": """
SELECT auction, bidder, price, `dateTime`, extra,
       DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS dt, DATE_FORMAT(`dateTime`, 'HH') AS `hour`
FROM bid""",
    "q11": """
SELECT bidder, count(*) AS bid_count, window_start AS starttime, window_end AS endtime
FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
GROUP BY bidder, window_start, window_end""",
    "q14": """
SELECT auction, bidder, 0.908 * price AS price,
       CASE WHEN HOUR(`dateTime`) BETWEEN 8 AND 18 THEN 'dayTime'
            WHEN HOUR(`dateTime`) <= 6 OR HOUR(`dateTime`) >= 20 THEN 'nightTime'
            ELSE 'otherTime' END AS bidTimeType,
       `dateTime`, extra, CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', '')) AS c_counts
FROM bid
WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000""",
    "q15": "SELECT %s AS `day`,\n  %s\nFROM bid GROUP BY %s" % (DAY, STATISTICS, DAY),
    "q16": "SELECT channel, %s AS `day`, max(DATE_FORMAT(`dateTime`, 'HH:mm')) AS `minute`,\n  %s\n"
           "FROM bid GROUP BY channel, %s" % (DAY, STATISTICS, DAY),
    "q17": "SELECT auction, %s AS `day`,\n  %s,\n  min(price) AS min_price, max(price) AS max_price, "
           "avg(price) AS avg_price, sum(price) AS sum_price\nFROM bid GROUP BY auction, %s"
           % (DAY, ranked_counts("*", "bids"), DAY),
    "q18": """
SELECT auction, bidder, price, channel, url, `dateTime`, extra
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY `dateTime` DESC) AS rank_number
      FROM bid)
WHERE rank_number <= 1""",
    "q19": """
SELECT * FROM
  (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10""",
    "q20": """
SELECT B.auction, B.bidder, B.price, B.channel, B.url, B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
       A.itemName, A.description, A.initialBid, A.reserve, A.`dateTime` AS auction_dateTime, A.expires,
       A.seller, A.category, A.extra AS auction_extra
FROM bid AS B JOIN auction AS A ON B.auction = A.id
WHERE A.category = 10""",
    "q21": """
SELECT auction, bidder, price, channel,
       CASE LOWER(channel) WHEN 'apple' THEN '0' WHEN 'google' THEN '1' WHEN 'facebook' THEN '2'
            WHEN 'baidu' THEN '3' ELSE %s END AS channel_id
FROM bid
WHERE %s IS NOT NULL OR LOWER(channel) IN ('apple', 'google', 'facebook', 'baidu')""" % (CHANNEL_ID, CHANNEL_ID),
    "q22": """
SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
       SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3
FROM bid""",
}

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User and system CPU time of process `pid`, in seconds."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_memory(pid):
    """The largest resident size of process `pid` in bytes (VmHWM), or None."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def count_events(path):
    files = [os.path.join(path, name) for name in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
    total = 0
    for name in files:
        with open(name, "rb") as lines:
            total += sum(block.count(b"\n") for block in iter(lambda: lines.read(1 << 24), b""))
    return total


def run(query, path, parallelism, events):
    from pyflink.common import Configuration
    from pyflink.java_gateway import get_gateway
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in [("parallelism.default", str(parallelism)),
                       ("pipeline.object-reuse", "true"),
                       ("state.backend.type", "hashmap"),
                       ("table.exec.mini-batch.enabled", "true"),
                       ("table.exec.mini-batch.allow-latency", "2 s"),
                       ("table.exec.mini-batch.size", "50000")]:
        config.set_string(key, value)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    tables = TableEnvironment.create(settings)
    tables.execute_sql(EVENTS_TABLE.replace("{path}", os.path.abspath(path)))
    for kind in KINDS:
        tables.execute_sql(kind_view(kind))
    result = tables.sql_query(QUERIES[query])
    # The Java schema names the SQL types (time attributes marked, which a sink does not take).
    columns = ", ".join("`%s` %s" % (column.getName(), column.getDataType().toString().replace(" *ROWTIME*", ""))
                        for column in result._j_table.getResolvedSchema().getColumns())
    tables.execute_sql("CREATE TABLE results (%s) WITH ('connector' = 'blackhole')" % columns)
    jvm = int(get_gateway().jvm.java.lang.ProcessHandle.current().pid())
    cpu_before = cpu_seconds(jvm)
    started = time.monotonic()
    submitted = result.execute_insert("results")
    submitted.wait()
    wall = time.monotonic() - started
    # The job's own run time, without planning and submission (what Flink's web UI shows).
    execution = submitted.get_job_client().get_job_execution_result().result()
    net_runtime = execution.get_net_runtime() / 1000.0
    return {
        "engine": "flink",
        "query": query,
        "parallelism": parallelism,
        "events": events,
        "wall_s": wall,
        "events_per_s": events / wall if wall > 0 else 0.0,
        "net_runtime_s": net_runtime,
        "cpu_s": cpu_seconds(jvm) - cpu_before,
        "peak_memory_bytes": peak_memory(jvm),
    }


def main():
    parser = argparse.ArgumentParser(description="Nexmark queries on Apache Flink over weir's JSON lines events.")
    parser.add_argument("--query", choices=sorted(QUERIES))
    parser.add_argument("--events", help="a JSON lines file, or a directory of them (one source split each)")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--count", type=int, help="the number of events (counted when left out)")
    parser.add_argument("--list", action="store_true", help="print the queries this runner has and exit")
    parser.add_argument("--show-sql", action="store_true", help="print the query's SQL and exit")
    args = parser.parse_args()
    if args.list:
        print(" ".join(sorted(QUERIES, key=lambda name: int(name[1:]))))
        return
    if args.query is None or (args.events is None and not args.show_sql):
        parser.error("--query and --events are needed")
    if args.show_sql:
        print(QUERIES[args.query].strip())
        return
    if not os.path.exists(args.events):
        sys.exit("nexmark.py: no such file or directory: %s" % args.events)
    events = args.count if args.count is not None else count_events(args.events)
    print(json.dumps(run(args.query, args.events, args.parallelism, events)), flush=True)


if __name__ == "__main__":
    main()
