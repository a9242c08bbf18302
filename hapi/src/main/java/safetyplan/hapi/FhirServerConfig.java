package safetyplan.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.search.HapiHSearchAnalysisConfigurers;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.narrative.INarrativeGenerator;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import ca.uhn.fhir.validation.IInstanceValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import jakarta.persistence.EntityManagerFactory;
import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

/**
 * The HAPI JPA beans for an R4 server on an in-memory H2 database (the default) or on PostgreSQL
 * ({@code --safetyplan.jdbc-url=jdbc:postgresql://host:port/db}).
 *
 * <p>Deliberately left out to keep startup fast and memory small: Hibernate Search (Lucene), subscriptions,
 * MDM, clinical reasoning, IG installation at startup, narrative generation, request logging (URLs can
 * carry identity numbers in search parameters, which must never be logged).
 */
@Configuration
@EnableTransactionManagement
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	// Batch2 (used by $expunge and terminology jobs) sends work over the in-memory message broker defined here.
	SubscriptionChannelConfig.class
})
public class FhirServerConfig {

	/** Storage behaviour the fhir-safetyplan client relies on; see README.md. */
	@Bean
	public JpaStorageSettings storageSettings(
			@Value("${safetyplan.search-cache-millis:60000}") long searchCacheMillis,
			@Value("${safetyplan.scheduling-enabled:true}") boolean schedulingEnabled) {
		JpaStorageSettings settings = new JpaStorageSettings();
		// Client-assigned ids must contain a letter (PUT Type/123 is refused), as on the public sandbox.
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		// Same default as HAPI and the sandbox, so clients must send Cache-Control: no-cache to read fresh.
		settings.setReuseCachedSearchResultsForMillis(searchCacheMillis);
		settings.setExpungeEnabled(true);
		settings.setDeleteExpungeEnabled(true);
		settings.setAllowMultipleDelete(true);
		settings.setAllowExternalReferences(true);
		// Value sets are expanded in memory on demand; pre-expansion only costs startup time and threads.
		settings.setPreExpandValueSets(false);
		settings.setEnableTaskPreExpandValueSets(false);
		settings.setHibernateSearchIndexSearchParams(false);
		settings.setHibernateSearchIndexFullText(false);
		settings.setSchedulingDisabled(!schedulingEnabled);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** Needed by the storage layer even though no subscription channel is enabled. */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	/** No generated narratives: what a client reads back is what it wrote. */
	@Bean
	public INarrativeGenerator narrativeGenerator() {
		return new NullNarrativeGenerator();
	}

	/**
	 * The connection pool. The user name comes from {@code safetyplan.jdbc-username}; the password never from the
	 * command line, which {@code ps} shows to everyone on the machine: from the private file named by
	 * {@code safetyplan.jdbc-password-file} (its first line; the file is deleted once read, as
	 * {@code safetyplan server start --db} writes it for this start only), else from the environment variable
	 * {@value #PASSWORD_VARIABLE}. The database is tried once here, so a wrong URL, user or password stops the
	 * server at once with one line saying why ({@link DatabaseUnavailable}) instead of a Hibernate stack trace.
	 */
	@Bean(destroyMethod = "close")
	public DataSource dataSource(
			@Value("${safetyplan.jdbc-url:jdbc:h2:mem:safetyplan}") String jdbcUrl,
			@Value("${safetyplan.jdbc-username:}") String username,
			@Value("${safetyplan.jdbc-password-file:}") String passwordFile) {
		boolean postgres = isPostgres(jdbcUrl);
		BasicDataSource dataSource = new BasicDataSource();
		dataSource.setDriverClassName(postgres ? "org.postgresql.Driver" : "org.h2.Driver");
		dataSource.setUrl(jdbcUrl);
		dataSource.setUsername(username.isEmpty() && !postgres ? "sa" : username);
		String password = passwordFile.isEmpty() ? System.getenv(PASSWORD_VARIABLE) : readOnce(passwordFile);
		dataSource.setPassword(password == null ? "" : password);
		dataSource.setMaxTotal(10);
		try (Connection connection = dataSource.getConnection()) {
			connection.isValid(5);
		} catch (SQLException e) {
			throw new DatabaseUnavailable(jdbcUrl, username, e);
		}
		return dataSource;
	}

	/** The first line of {@code path}, which is then deleted (it holds a password for this start only). */
	private static String readOnce(String path) {
		Path file = Path.of(path);
		try {
			List<String> lines = Files.readAllLines(file);
			return lines.isEmpty() ? "" : lines.get(0);
		} catch (IOException e) {
			throw new IllegalStateException("cannot read the database password file " + path + ": " + e, e);
		} finally {
			try {
				Files.deleteIfExists(file);
			} catch (IOException ignored) {
				// safetyplan server start removes it too
			}
		}
	}

	/** Where the database password is read from when no password file is named (for runs by hand). */
	public static final String PASSWORD_VARIABLE = "SAFETYPLAN_HAPI_DB_PASSWORD";

	static boolean isPostgres(String jdbcUrl) {
		return jdbcUrl.startsWith("jdbc:postgresql:");
	}

	/** The database could not be opened at startup; the message names it (never the password) and the cause. */
	public static final class DatabaseUnavailable extends IllegalStateException {
		DatabaseUnavailable(String jdbcUrl, String username, SQLException cause) {
			super("cannot open the database " + jdbcUrl + (username.isEmpty() ? "" : " as user " + username)
					+ ": " + rootMessage(cause), cause);
		}

		/** The driver's own words (e.g. PostgreSQL's FATAL line) rather than the pool's wrapper around them. */
		private static String rootMessage(Throwable e) {
			Throwable root = e;
			while (root.getCause() != null && root.getCause() != root) {
				root = root.getCause();
			}
			return root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
		}
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource,
			@Value("${safetyplan.jdbc-url:jdbc:h2:mem:safetyplan}") String jdbcUrl,
			@Value("${safetyplan.lucene:false}") boolean lucene) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		Map<String, Object> jpa = new HashMap<>();
		jpa.put(
				"hibernate.dialect",
				(isPostgres(jdbcUrl) ? HapiFhirPostgresDialect.class : HapiFhirH2Dialect.class).getName());
		jpa.put("hibernate.hbm2ddl.auto", "update");
		jpa.put("hibernate.jdbc.batch_size", "20");
		jpa.put("hibernate.cache.use_query_cache", "false");
		jpa.put("hibernate.cache.use_second_level_cache", "false");
		jpa.put("hibernate.cache.use_structured_entries", "false");
		jpa.put("hibernate.cache.use_minimal_puts", "false");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.show_sql", "false");
		// Schema updates on PostgreSQL raise harmless notices ("constraint ... does not exist, skipping") by the
		// hundred; errors are still logged.
		jpa.put("hibernate.jdbc.log.warnings", "false");
		if (lucene) {
			// In-memory Lucene index: only the terminology tables use it (REST $expand of a ValueSet over a
			// CodeSystem stored here); search parameters stay in SQL (see storageSettings).
			jpa.put("hibernate.search.enabled", "true");
			jpa.put("hibernate.search.backend.type", "lucene");
			jpa.put("hibernate.search.backend.directory.type", "local-heap");
			jpa.put("hibernate.search.backend.lucene_version", "LUCENE_CURRENT");
			jpa.put(
					"hibernate.search.backend.analysis.configurer",
					HapiHSearchAnalysisConfigurers.HapiLuceneAnalysisConfigurer.class.getName());
		} else {
			// Both Hibernate Search backends are on the classpath (via jpaserver-base); switched off entirely.
			jpa.put("hibernate.search.enabled", "false");
		}
		factory.setJpaPropertyMap(jpa);
		return factory;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}

	/** The FHIR REST endpoint: every resource type, system operations ($expunge, transactions), $validate. */
	@Bean
	public RestfulServer restfulServer(
			FhirContext fhirContext,
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			ValueSetOperationProvider valueSetOperationProvider,
			IInstanceValidatorModule instanceValidator,
			@Value("${safetyplan.validate-requests:false}") boolean validateRequests) {
		RestfulServer server = new RestfulServer(fhirContext);
		server.registerProviders(resourceProviders.createProviders());
		server.registerProvider(systemProvider);
		server.registerProvider(valueSetOperationProvider);
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("fhir-safetyplan local HAPI FHIR R4 server");
		server.setServerConformanceProvider(capabilities);
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		if (validateRequests) {
			// Optional strict mode: refuse (422) any written resource with validation errors against the base
			// spec and its meta.profile. Off by default, like the public sandbox, so clients must validate first.
			RequestValidatingInterceptor validating = new RequestValidatingInterceptor();
			validating.setValidatorModules(List.of(instanceValidator));
			validating.setFailOnSeverity(ResultSeverityEnum.ERROR);
			server.registerInterceptor(validating);
		}
		return server;
	}
}
