// Connects over JDBC (pgjdbc), writes with a PreparedStatement, reads back, and lists tables
// through DatabaseMetaData.getTables — what BI tools and JVM apps do first.
import java.sql.*;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        try (Connection c = DriverManager.getConnection(url, "tester", "")) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jdbc_t (id BIGINT NOT NULL, name TEXT, amount DOUBLE PRECISION)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_t VALUES (?, ?, ?)")) {
                for (int i = 0; i < 3; i++) {
                    p.setLong(1, i);
                    p.setString(2, "n" + i);
                    p.setDouble(3, i * 1.5);
                    p.executeUpdate();
                }
            }
            try (PreparedStatement p = c.prepareStatement("SELECT count(*), sum(amount) FROM jdbc_t WHERE id >= ?")) {
                p.setLong(1, 1);
                try (ResultSet r = p.executeQuery()) {
                    r.next();
                    System.out.println("count=" + r.getLong(1) + " sum=" + r.getDouble(2));
                }
            }
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product=" + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet r = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (r.next()) System.out.println("table=" + r.getString("TABLE_SCHEM") + "." + r.getString("TABLE_NAME"));
            }
            try (ResultSet r = md.getColumns(null, "public", "jdbc_t", "%")) {
                while (r.next()) System.out.println("column=" + r.getString("COLUMN_NAME") + ":" + r.getString("TYPE_NAME"));
            }
        }
    }
}
