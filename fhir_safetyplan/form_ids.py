"""The stable identifiers of the form: the ids of our CodeSystems, the codes the generated resources use, and
the linkIds. Stable: a change here is a new Questionnaire version (items only in 1.0.0 are marked so; they stay
because 1.0.0 responses are still documented)."""

from __future__ import annotations

from fhir_safetyplan import codes

#: The CodeSystem ids of our own codes.
CS_PLAN = "sikkerhetsplan"
#: Our answer codes (Y / N / NA / asked-declined / not-asked), nb displays with nn and en designations.
CS_ANSWER = codes.ANSWER_CS
CS_CHANNEL = "kontaktkanal"
CS_DUTY = "opplysningsplikt"
CS_INSTRUMENT = "risikoinstrument"
CS_LEVEL = "risikoniva"
CS_CONVERSATION = "samtale"
CS_AVERT = "avvergingsplikt"
TEMPLATE_ID = "careplan-template"
#: The CarePlan category (1.0.0 used ``sikkerhetsplan``, which names the subject in generic viewers).
CATEGORY_CODE = "oppfolging"
#: The safety Flag's code (1.0.0 documentation used ``trygg-kontakt``).
FLAG_CODE = "kontaktavtale"


class Link:
    """The linkIds of the form."""

    CONVERSATION = "samtale"
    CONVERSATION_TYPE = "samtale.type"
    ALONE = "samtale.uten-partner"
    INTERPRETER = "samtale.tolk"
    INFORMED = "samtale.informert"
    INVOLVEMENT = "samtale.involvering"
    REFUSAL_INFO = "samtale.avslag-info"
    REFUSAL_NOTE = "samtale.avslag"
    REFUSAL_INFORMED = "samtale.avslag-informert"
    EXISTING = "samtale.eksisterende-tiltak"
    ADVICE_INFO_V11 = "samtale.atferd-info"
    ADVICE_GIVEN_V11 = "samtale.atferd-rad"
    ACCESS = "innsyn"
    ACCESS_INFO = "innsyn.info"
    ACCESS_HIDE = "innsyn.skjul"
    SAFE_CONTACT = "trygg-kontakt"
    SAFE_CHANNELS = "trygg-kontakt.trygge"
    UNSAFE_CHANNELS = "trygg-kontakt.utrygge"
    SAFE_TIMES = "trygg-kontakt.tidspunkt"
    SAFE_NOTE = "trygg-kontakt.merknad"
    CODE_WORD = "trygg-kontakt.kodeord"
    SAFE_REVIEW = "trygg-kontakt.gjennomgas"
    PLAN = "plan"
    CHECKLIST = "plan.sjekkliste"
    AGREED = "plan.avtalte-tiltak"
    ADVICE_INFO = "plan.atferd-info"  # 1.0.0
    ADVICE_GIVEN = "plan.atferd-rad"  # 1.0.0
    DEPENDANTS = "sarbare"
    DEPENDANTS_PRESENT = "sarbare.omsorg"  # 1.0.0
    CHILDREN = "sarbare.barn"
    PERPETRATOR_CHILDREN = "sarbare.barn-utover"
    OTHERS = "sarbare.andre"
    CHILDREN_COUNT = "sarbare.antall-barn"
    DEPENDANTS_PLAN = "sarbare.plan"
    DUTY_INFO = "sarbare.opplysningsplikt-info"
    DUTY = "sarbare.opplysningsplikt"
    DUTY_NOTE = "sarbare.opplysningsplikt-merknad"
    MENTAL = "psykisk"
    MENTAL_PRESENT = "psykisk.funksjonsnedsettelse"
    MENTAL_ADAPTATION = "psykisk.tilpasning"
    RISK = "risiko"
    RISK_DONE = "risiko.utfort"
    RISK_INSTRUMENT = "risiko.instrument"
    RISK_DATE = "risiko.dato"
    RISK_LEVEL = "risiko.niva"
    RISK_HIGH_INFO = "risiko.hoy-info"
    RISK_CONCLUSION = "risiko.konklusjon"
    RISK_BY = "risiko.utfort-av"
    AVERT = "avverging"
    AVERT_INFO = "avverging.info"
    AVERT_STATUS = "avverging.status"
    AVERT_NOTE = "avverging.merknad"

    @staticmethod
    def checklist_item(key: str) -> str:
        return f"{Link.CHECKLIST}.{key}"

    @staticmethod
    def checklist_help(key: str) -> str:
        return f"{Link.CHECKLIST}.{key}.hjelp"


#: The sections that must be answered (when enabled). Not marked ``required`` on the group items (LHC-Forms then
#: reports every such group as missing a value although its questions are answered): the questions carry
#: ``required`` and :mod:`fhir_safetyplan.sections` enforces the sections.
REQUIRED_GROUPS = (
    Link.CONVERSATION,
    Link.ACCESS,
    Link.SAFE_CONTACT,
    Link.PLAN,
    Link.CHECKLIST,
    Link.DEPENDANTS,
    Link.AVERT,
)
