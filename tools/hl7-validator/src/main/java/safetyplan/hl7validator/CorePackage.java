package safetyplan.hl7validator;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.hl7.fhir.r4.formats.IParser.OutputStyle;
import org.hl7.fhir.r4.formats.JsonParser;
import org.hl7.fhir.r4.formats.XmlParser;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Resource;
import org.hl7.fhir.utilities.npm.NpmPackageIndexBuilder;

/**
 * Rebuilds the package hl7.fhir.r4.core#4.0.1 from the R4 definition bundles shipped in
 * ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4 (on the classpath): one JSON file per resource, package.json and
 * .index.json, in the layout of a FHIR package cache ({cache}/hl7.fhir.r4.core#4.0.1/package/).
 * The package is on no registry reachable here; its content is the same R4 definitions.
 */
final class CorePackage {
    static final String ID = "hl7.fhir.r4.core";
    static final String VERSION = "4.0.1";

    private static final String BASE = "org/hl7/fhir/r4/model/";
    private static final List<String> XML_BUNDLES = List.of(
            "profile/profiles-types.xml",
            "profile/profiles-resources.xml",
            "profile/profiles-others.xml",
            "extension/extension-definitions.xml",
            "valueset/valuesets.xml",
            "valueset/v2-tables.xml",
            "valueset/v3-codesystems.xml");
    private static final List<String> JSON_BUNDLES = List.of("sp/search-parameters.json");

    private CorePackage() {}

    /** Writes the package into {cache}/hl7.fhir.r4.core#4.0.1; returns how many resources it holds. */
    static int build(Path cache) throws IOException {
        Path root = cache.resolve(ID + "#" + VERSION);
        Path pkg = root.resolve("package");
        Path partial = cache.resolve(ID + "#" + VERSION + ".partial");
        deleteTree(partial);
        Files.createDirectories(partial.resolve("package"));
        int count = 0;
        for (String name : XML_BUNDLES) {
            count += writeEntries(new XmlParser().parse(open(name)), partial.resolve("package"));
        }
        for (String name : JSON_BUNDLES) {
            count += writeEntries(new JsonParser().parse(open(name)), partial.resolve("package"));
        }
        String manifest = "{\n  \"name\": \"" + ID + "\",\n  \"version\": \"" + VERSION + "\",\n"
                + "  \"fhirVersions\": [\"" + VERSION + "\"],\n  \"type\": \"Core\",\n"
                + "  \"description\": \"FHIR R4 definitions, rebuilt from hapi-fhir-validation-resources-r4\",\n"
                + "  \"license\": \"CC0-1.0\",\n  \"dependencies\": {}\n}\n";
        Files.writeString(partial.resolve("package/package.json"), manifest, StandardCharsets.UTF_8);
        new NpmPackageIndexBuilder().execute(partial.resolve("package").toString());
        deleteTree(root);
        Files.move(partial, root);
        if (!Files.isRegularFile(pkg.resolve(".index.json"))) {
            throw new IOException("the package index was not written in " + pkg);
        }
        return count;
    }

    private static InputStream open(String name) throws IOException {
        InputStream in = CorePackage.class.getClassLoader().getResourceAsStream(BASE + name);
        if (in == null) {
            throw new IOException("R4 definition bundle " + BASE + name + " is not on the classpath");
        }
        return in;
    }

    private static int writeEntries(Resource parsed, Path dir) throws IOException {
        Bundle bundle = (Bundle) parsed;
        JsonParser json = new JsonParser();
        json.setOutputStyle(OutputStyle.NORMAL);
        int count = 0;
        for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
            Resource resource = entry.getResource();
            if (resource == null || !resource.hasId()) {
                continue;
            }
            String file = resource.fhirType() + "-" + resource.getIdPart() + ".json";
            Files.writeString(dir.resolve(file), json.composeString(resource), StandardCharsets.UTF_8);
            count++;
        }
        return count;
    }

    private static void deleteTree(Path path) throws IOException {
        if (!Files.exists(path)) {
            return;
        }
        try (var walk = Files.walk(path)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
