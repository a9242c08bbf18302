package safetyplan.hapi;

import ca.uhn.fhir.rest.server.RestfulServer;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.embedded.EmbeddedWebServerFactoryCustomizerAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * Entry point of the fhir-safetyplan test server: a HAPI FHIR JPA server (R4, H2 in memory or PostgreSQL) for
 * local development and integration tests.
 *
 * <p>Only the embedded web server is auto-configured (port, address, Tomcat options); everything else is
 * wired explicitly in {@link FhirServerConfig}, so startup does not scan or auto-configure what we don't use.
 */
@SpringBootConfiguration
@ImportAutoConfiguration({
	PropertyPlaceholderAutoConfiguration.class,
	ServletWebServerFactoryAutoConfiguration.class,
	EmbeddedWebServerFactoryCustomizerAutoConfiguration.class
})
@Import(FhirServerConfig.class)
public class Launcher {

	/** Exit status when the database cannot be opened (the same as safetyplan's configuration error). */
	static final int EXIT_DATABASE = 7;
	/** The start of the one line printed then; {@code safetyplan server start} quotes it. */
	static final String DATABASE_MARKER = "safetyplan-hapi: ";

	public static void main(String[] args) {
		try {
			SpringApplication.run(Launcher.class, args);
		} catch (RuntimeException e) {
			for (Throwable cause = e; cause != null; cause = cause.getCause()) {
				if (cause instanceof FhirServerConfig.DatabaseUnavailable) {
					System.err.println(DATABASE_MARKER + cause.getMessage());
					System.exit(EXIT_DATABASE);
				}
			}
			throw e;
		}
	}

	/** Serves the FHIR API under /fhir, initialised at startup so the first request is not slow. */
	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer restfulServer) {
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(restfulServer, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
