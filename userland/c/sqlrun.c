/* An SQLite workload for the real-program tests and the benchmark, built
 * with musl-gcc -static against the sqlite3.c amalgamation of the
 * libsqlite3-sys crate: its default VFS (unix, with POSIX advisory locks
 * and fdatasync), a rollback journal, transactions.
 *
 *   sqlite DB ROWS MMAP_SIZE   (MMAP_SIZE 0: no mmap; else PRAGMA mmap_size)
 *
 * Prints what the queries return (the same on every kernel). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sqlite3.h"

static sqlite3 *db;

static void exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        printf("sqlite error in [%s]: %s\n", sql, err ? err : "?");
        exit(1);
    }
}

static int print_row(void *label, int n, char **values, char **names) {
    (void)names;
    printf("%s:", (const char *)label);
    for (int i = 0; i < n; i++) printf(" %s", values[i] ? values[i] : "NULL");
    printf("\n");
    return 0;
}

static void query(const char *label, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, print_row, (void *)label, &err) != SQLITE_OK) {
        printf("sqlite error in [%s]: %s\n", sql, err ? err : "?");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: sqlite DB ROWS MMAP_SIZE\n");
        return 2;
    }
    const char *path = argv[1];
    int rows = atoi(argv[2]);
    long long mmap_size = atoll(argv[3]);
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        printf("cannot open %s: %s\n", path, sqlite3_errmsg(db));
        return 1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "PRAGMA mmap_size=%lld", mmap_size);
    exec(sql);
    query("mmap_size", "PRAGMA mmap_size");
    query("journal", "PRAGMA journal_mode");
    exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL, blob BLOB)");
    exec("CREATE INDEX t_name ON t(name)");
    sqlite3_stmt *insert;
    sqlite3_prepare_v2(db, "INSERT INTO t(name, value, blob) VALUES(?, ?, zeroblob(?))", -1,
                       &insert, NULL);
    /* Batches of 1000 rows, one transaction each. */
    for (int done = 0; done < rows;) {
        exec("BEGIN");
        for (int i = 0; i < 1000 && done < rows; i++, done++) {
            char name[32];
            snprintf(name, sizeof name, "name-%07d", (done * 7919) % rows);
            sqlite3_bind_text(insert, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(insert, 2, done * 0.5);
            sqlite3_bind_int(insert, 3, done % 200);
            if (sqlite3_step(insert) != SQLITE_DONE) {
                printf("insert failed: %s\n", sqlite3_errmsg(db));
                return 1;
            }
            sqlite3_reset(insert);
        }
        exec("COMMIT");
    }
    sqlite3_finalize(insert);
    query("count", "SELECT count(*), sum(value), sum(length(blob)) FROM t");
    query("first", "SELECT name FROM t ORDER BY name LIMIT 3");
    exec("BEGIN; UPDATE t SET value = value * 2 WHERE id % 3 = 0; ROLLBACK");
    query("after rollback", "SELECT sum(value) FROM t");
    exec("BEGIN; DELETE FROM t WHERE id % 2 = 0; COMMIT");
    query("after delete", "SELECT count(*), min(id), max(id) FROM t");
    query("group", "SELECT length(blob) / 50, count(*) FROM t GROUP BY 1 ORDER BY 1");
    query("integrity", "PRAGMA integrity_check");
    sqlite3_close(db);
    /* A second connection sees the committed data through the file. */
    sqlite3_open(path, &db);
    query("reopened", "SELECT count(*) FROM t");
    sqlite3_close(db);
    return 0;
}
