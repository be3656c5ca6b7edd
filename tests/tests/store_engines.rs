//! The shared store against its two engines: the same behaviour on SQLite and on a real
//! PostgreSQL cluster started for this test binary's tests.

use acas_e2e::postgres::PgCluster;

#[test]
fn the_test_cluster_starts_gives_fresh_databases_and_stops_on_drop() {
    let cluster = PgCluster::start();
    let port = cluster.port();
    let first = cluster.database();
    let second = cluster.database();
    assert_ne!(first, second);
    let name = |url: &str| url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    cluster.psql(&name(&first), "CREATE TABLE only_here (x int)");
    let seen = cluster.psql(&name(&second), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'");
    assert_eq!(seen, "0", "a fresh database does not see another's tables");
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still listens after the cluster was dropped"
    );
}
