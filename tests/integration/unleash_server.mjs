// Starts a real Unleash server (npm `unleash-server`, a test-only tool) for strangler's
// integration tests, on loopback, with open-source auth and no outbound calls.
// The fixture (tests/integration/unleash_fixture.py) sets the environment:
//   UNLEASH_TEST_DATABASE_URL  a fresh PostgreSQL database
//   UNLEASH_TEST_PORT          an ephemeral port on 127.0.0.1
//   INIT_ADMIN_API_TOKENS, INIT_BACKEND_API_TOKENS  tokens Unleash creates at start
//   SEND_TELEMETRY=false, CHECK_VERSION=false
import { start } from 'unleash-server';

const port = Number.parseInt(process.env.UNLEASH_TEST_PORT ?? '', 10);
if (!process.env.UNLEASH_TEST_DATABASE_URL || !Number.isInteger(port)) {
  console.error('set UNLEASH_TEST_DATABASE_URL and UNLEASH_TEST_PORT');
  process.exit(2);
}

// start() runs the migrations, listens, and stops gracefully on SIGTERM.
await start({
  databaseUrl: process.env.UNLEASH_TEST_DATABASE_URL,
  db: { ssl: false },
  server: { host: '127.0.0.1', port, gracefulShutdownEnable: true },
  authentication: { type: 'open-source', enableApiToken: true },
  versionCheck: { enable: false },
  telemetry: false,
});
console.log(`unleash-server listening on http://127.0.0.1:${port}`);
