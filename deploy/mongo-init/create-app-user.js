// Run by the mongo image once, when its data volume is empty (docker-entrypoint-initdb.d), as root:
// the application's own user, with readWrite on the application's database and nothing else.
const database = process.env.MONGO_INITDB_DATABASE;
db.getSiblingDB(database).createUser({
  user: process.env.MONGO_APP_USER,
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: [{ role: "readWrite", db: database }],
});
