// Compose's MongoDB runs this once, as its root user, when it initialises an empty data volume
// (/docker-entrypoint-initdb.d): one user per service, allowed to read and write its own database
// only (and the database its rebuild writes, README "Rebuilding"), so that a compromised service
// cannot write another service's outbox and have that service's relay publish it.
// Passwords come from MONGODB_PASSWORD_<SERVICE>: no default, none shorter than 24 characters.
const SERVICES = ["applications", "assessment", "grants", "notifications"];
const admin = db.getSiblingDB("admin");
for (const service of SERVICES) {
  const variable = `MONGODB_PASSWORD_${service.toUpperCase()}`;
  const password = process.env[variable] || "";
  if (password.length < 24) {
    throw new Error(`${variable} must be set to a password of at least 24 characters`);
  }
  const own = `cx_${service}`, rebuilt = `cx_${service}_rebuilt`;
  admin.createUser({
    user: service,
    pwd: password,
    roles: [{ role: "readWrite", db: own }, { role: "readWrite", db: rebuilt }, { role: "dbAdmin", db: rebuilt }],
  });
  print(`user ${service}: readWrite on ${own} (and ${rebuilt}, its rebuild's)`);
}
