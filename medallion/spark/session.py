"""The in-process SparkSession: local mode, Apache Iceberg, the lake's catalog as default.

Everything comes from pip and apt, nothing is downloaded at run time: Spark from pyspark, the
Iceberg runtime jar from the snowpark-connect-deps-iceberg wheel (a repackage of Apache
Iceberg 1.10.2's iceberg-spark-runtime-3.5_2.12), PostgreSQL's JDBC driver from Debian
(libpostgresql-jdbc-java), for Iceberg's JdbcCatalog on the catalog pyiceberg writes.

One session per process (JVM start costs ~10 s): catalogs are registered at run time under
their own names, so tests with several lakes share it. The session's time zone is UTC, which
is what gold's months and days mean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from medallion.errors import LakeUnavailable
from medallion.lake.dependencies import require
from medallion.lake.target import LakeTarget

ICEBERG_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JDBC_JARS = (Path("/usr/share/java/postgresql.jar"),)
SQLITE_JARS = (Path("/usr/share/java/sqlite-jdbc.jar"),)


def iceberg_jar() -> Path:
    require("snowpark_connect_deps_iceberg")
    import snowpark_connect_deps_iceberg

    jar = Path(snowpark_connect_deps_iceberg.__file__).parent / "jars" / ICEBERG_JAR
    if not jar.is_file():
        raise LakeUnavailable(f"{jar} is missing: reinstall snowpark-connect-deps-iceberg==1.0.2 ('make setup')")
    return jar


def jdbc_jar() -> Path:
    configured = os.environ.get("MEDALLION_JDBC_JAR")
    for jar in ([Path(configured)] if configured else list(JDBC_JARS)):
        if jar.is_file():
            return jar
    raise LakeUnavailable("PostgreSQL's JDBC driver is missing: apt-get install libpostgresql-jdbc-java "
                          "('make setup' does), or set MEDALLION_JDBC_JAR to a postgresql.jar")


def sqlite_jar() -> Path:
    """Xerial's SQLite JDBC driver (Debian: libxerial-sqlite-jdbc-java), for a SQLite catalog."""
    configured = os.environ.get("MEDALLION_SQLITE_JDBC_JAR")
    for jar in ([Path(configured)] if configured else list(SQLITE_JARS)):
        if jar.is_file():
            return jar
    raise LakeUnavailable("SQLite's JDBC driver is missing (the lake's catalog of a socket-only warehouse): "
                          "apt-get install libxerial-sqlite-jdbc-java ('make setup' does), or set "
                          "MEDALLION_SQLITE_JDBC_JAR")


def _java() -> None:
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise LakeUnavailable("Spark needs Java 17: apt-get install openjdk-17-jre-headless ('make setup' does)")


def catalog_conf(target: LakeTarget) -> dict[str, str]:
    """The Spark settings of the lake's catalog: Iceberg's JdbcCatalog on pyiceberg's tables."""
    if target.jdbc_url is None:
        raise LakeUnavailable(f"the lake's catalog {target.catalog_uri.split('://')[0]}:// is neither PostgreSQL nor "
                              "SQLite: local Spark reaches it only by JDBC; use spark_profiles_dir for your own Spark")
    prefix = f"spark.sql.catalog.{target.catalog_name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        f"{prefix}.uri": target.jdbc_url,
        f"{prefix}.jdbc.schema-version": "V1",  # views in the catalog (silver's current views, gold's lines)
        f"{prefix}.warehouse": target.warehouse,
        # bronze is appended by pyiceberg, outside this session: a cached table would hide it
        f"{prefix}.cache-enabled": "false",
    }
    if target.jdbc_url.startswith("jdbc:sqlite:"):
        # Iceberg's start-up check of its catalog tables leaves a metadata ResultSet open, which
        # on SQLite pins the connection to a read snapshot for good: it then missed pyiceberg's
        # later appends and failed its own commits (SQLITE_BUSY_SNAPSHOT). pyiceberg creates the
        # tables (with the V1 iceberg_type column) before the session starts, so the check is
        # skipped. One connection: SQLite has one writer; wait for pyiceberg's commits.
        conf[f"{prefix}.jdbc.init-catalog-tables"] = "false"
        conf[f"{prefix}.clients"] = "1"
        conf[f"{prefix}.jdbc.busy_timeout"] = "30000"
    if target.jdbc_user:
        conf[f"{prefix}.jdbc.user"] = target.jdbc_user
    if target.jdbc_password:
        conf[f"{prefix}.jdbc.password"] = target.jdbc_password
    return conf


def _jars() -> list[Path]:
    """The Iceberg runtime and the JDBC drivers that are installed (one of the two is enough)."""
    drivers = []
    for find in (jdbc_jar, sqlite_jar):
        try:
            drivers.append(find())
        except LakeUnavailable as missing:
            problem = missing
    if not drivers:
        raise problem
    return [iceberg_jar(), *drivers]


def spark_session(target: LakeTarget):  # -> pyspark.sql.SparkSession
    """The process's SparkSession with the lake's catalog registered and made the default."""
    require("pyspark")
    _java()
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        builder = (SparkSession.builder.master(os.environ.get("MEDALLION_SPARK_MASTER", "local[2]"))
                   .appName("medallion")
                   .config("spark.jars", ",".join(str(jar) for jar in _jars()))
                   .config("spark.driver.extraLibraryPath", "/usr/lib/x86_64-linux-gnu/jni:/usr/lib/jni")
                   .config("spark.sql.extensions",
                           "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.ansi.enabled", "false")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", os.environ.get("MEDALLION_SPARK_PARTITIONS", "2"))
                   .config("spark.driver.memory", os.environ.get("MEDALLION_SPARK_MEMORY", "2g"))
                   .config("spark.sql.catalogImplementation", "in-memory")
                   # small local builds are many short queries: the JIT's quick tier and no
                   # whole-stage code generation start faster than they run slower
                   .config("spark.driver.extraJavaOptions",
                           os.environ.get("MEDALLION_SPARK_JAVA_OPTIONS",
                                          "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"))
                   .config("spark.sql.codegen.wholeStage", os.environ.get("MEDALLION_SPARK_CODEGEN", "false")))
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
    if target.catalog_uri.startswith("sqlite"):
        from medallion.lake.target import open_catalog

        open_catalog(target)  # creates the catalog's tables (see catalog_conf)
    for key, value in catalog_conf(target).items():
        session.conf.set(key, value)
    session.conf.set("spark.sql.defaultCatalog", target.catalog_name)
    session.catalog.setCurrentCatalog(target.catalog_name)
    return session
