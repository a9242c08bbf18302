package safetyplan.hl7validator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.hl7.fhir.r5.model.OperationOutcome;
import org.hl7.fhir.utilities.ByteProvider;
import org.hl7.fhir.utilities.http.ManagedWebAccess;
import org.hl7.fhir.validation.ValidationEngine;
import org.hl7.fhir.validation.ValidationRecord;
import org.hl7.fhir.validation.service.model.InstanceValidatorParameters;
import org.hl7.fhir.validation.service.utils.QuestionnaireMode;

/**
 * The official HL7 FHIR validator engine (org.hl7.fhir.validation), offline, many files per JVM.
 *
 * <pre>
 *   java -Duser.home=CACHE_HOME -cp ... safetyplan.hl7validator.Main core-package CACHE_DIR
 *   java -Duser.home=CACHE_HOME -cp ... safetyplan.hl7validator.Main validate JOB.json RESULT.json
 * </pre>
 *
 * JOB.json: {"tho": "7.0.1", "extensions": "5.3.0-ballot-tc1", "igs": ["id#version" | "folder", ...],
 * "assumeValidRestReferences": true|false (a reference Type/id to a resource on the server is taken as valid),
 * "tasks": [{"name": "...", "file": "...", "profiles": ["canonical", ...], "questionnaire": "none|check|required"}]}.
 * RESULT.json: {"loadSeconds": s, "validateSeconds": s, "results": [{"name": "...", "outcome": OperationOutcome}]}.
 * The package cache is the validator's default one under user.home, which the caller points at a project folder;
 * all web access is prohibited, so a missing package is an error, never a download.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        ManagedWebAccess.setAccessPolicy(ManagedWebAccess.WebAccessPolicy.PROHIBITED);
        if (args.length == 2 && args[0].equals("core-package")) {
            int count = CorePackage.build(Path.of(args[1]));
            System.out.println("hl7.fhir.r4.core#4.0.1: " + count + " resources");
            return;
        }
        if (args.length == 3 && args[0].equals("validate")) {
            validate(Path.of(args[1]), Path.of(args[2]));
            return;
        }
        System.err.println("usage: Main core-package CACHE_DIR | Main validate JOB.json RESULT.json");
        System.exit(2);
    }

    private static void validate(Path jobFile, Path resultFile) throws Exception {
        JsonObject job = JsonParser.parseString(Files.readString(jobFile, StandardCharsets.UTF_8)).getAsJsonObject();
        long start = System.nanoTime();
        ValidationEngine engine = new ValidationEngine.ValidationEngineBuilder()
                .withVersion("4.0.1")
                .withNoTerminologyServer()
                .withCanRunWithoutTerminologyServer(true)
                .withThoVersion(job.get("tho").getAsString())
                .withExtensionsVersion(job.get("extensions").getAsString())
                .withUserAgent("fhir-safetyplan-tests")
                .fromSource(CorePackage.ID + "#" + CorePackage.VERSION);
        for (JsonElement ig : job.getAsJsonArray("igs")) {
            engine.getIgLoader().loadIg(engine.getIgs(), engine.getBinaries(), ig.getAsString(), false);
        }
        boolean assumeValidRestReferences = job.has("assumeValidRestReferences")
                && job.get("assumeValidRestReferences").getAsBoolean();
        long loaded = System.nanoTime();
        JsonArray results = new JsonArray();
        org.hl7.fhir.r5.formats.JsonParser composer = new org.hl7.fhir.r5.formats.JsonParser();
        for (JsonElement element : job.getAsJsonArray("tasks")) {
            JsonObject task = element.getAsJsonObject();
            String name = task.get("name").getAsString();
            byte[] content = Files.readAllBytes(Path.of(task.get("file").getAsString()));
            List<String> profiles = new ArrayList<>();
            if (task.has("profiles")) {
                for (JsonElement p : task.getAsJsonArray("profiles")) {
                    profiles.add(p.getAsString());
                }
            }
            InstanceValidatorParameters params = new InstanceValidatorParameters()
                    .setProfiles(profiles)
                    .setAssumeValidRestReferences(assumeValidRestReferences)
                    .setQuestionnaireMode(QuestionnaireMode.fromCode(
                            task.has("questionnaire") ? task.get("questionnaire").getAsString() : "none"));
            List<ValidationRecord> records = new ArrayList<>();
            OperationOutcome outcome = engine.validate(name, ByteProvider.forBytes(content), FhirFormat.JSON, params,
                    records);
            JsonObject result = new JsonObject();
            result.addProperty("name", name);
            result.add("outcome", JsonParser.parseString(composer.composeString(outcome)));
            results.add(result);
        }
        long done = System.nanoTime();
        JsonObject out = new JsonObject();
        out.addProperty("loadSeconds", (loaded - start) / 1e9);
        out.addProperty("validateSeconds", (done - loaded) / 1e9);
        out.add("results", results);
        Files.writeString(resultFile, new Gson().toJson(out), StandardCharsets.UTF_8);
    }
}
