#!/usr/bin/env bash
# Installs what the lake's Spark engine needs beyond pip, once: Java 17 (Spark runs on it) and
# the JDBC drivers of PostgreSQL and SQLite (Iceberg's JdbcCatalog reads the catalog pyiceberg writes: in
# the warehouse PostgreSQL, or a SQLite file when the warehouse is socket-only). Idempotent.
set -euo pipefail

have_java() { command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ]; }
have_jdbc() { [ -f /usr/share/java/postgresql.jar ] || [ -f "${MEDALLION_JDBC_JAR:-/nonexistent}" ]; }
have_sqlite() { [ -f /usr/share/java/sqlite-jdbc.jar ] || [ -f "${MEDALLION_SQLITE_JDBC_JAR:-/nonexistent}" ]; }

if have_java && have_jdbc && have_sqlite; then
  echo "Java and the JDBC drivers (PostgreSQL, SQLite): present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install Java 17 and PostgreSQL's JDBC driver (set MEDALLION_JDBC_JAR to its jar)," >&2
  echo "       then run 'make setup' again" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing Java needs root: run 'make setup' as root or install sudo" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "Installing Java 17 and the JDBC drivers (apt)..."
$SUDO apt-get update -qq
packages=()
have_java || packages+=(openjdk-17-jre-headless)
have_jdbc || packages+=(libpostgresql-jdbc-java)
have_sqlite || packages+=(libxerial-sqlite-jdbc-java)
$SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
have_java && have_jdbc && have_sqlite || { echo "error: Java or a JDBC driver is still missing" >&2; exit 1; }
