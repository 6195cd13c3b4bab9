//! Logsources and field names: which events a rule applies to, and what a Sigma field is called
//! in Vigil's events (the role pySigma's processing pipelines play).
//!
//! Everything here is data. A rule's `logsource` resolves to one or more [`Alternative`]s; each
//! says which events belong to it (every constraint must hold: the event's field equals one of
//! the listed values, case-insensitively) and which field table renames Sigma's field names.
//! A rule applies to an event when any of its alternatives does, and is evaluated with that
//! alternative's field names.
//!
//! | logsource | events | field names |
//! |---|---|---|
//! | windows + a Sysmon category (`process_creation`, `file_event`, `registry_*`, `image_load`, …) | EVTX `Channel` Sysmon/Operational and the category's `EventID`s (plus `EventType` for `registry_add`/`registry_delete`) | as EVTX emits them (Sigma uses Sysmon's names) |
//! | windows + `process_creation` | also `Channel` Security, `EventID` 4688 | `Image`→`NewProcessName`, `ParentImage`→`ParentProcessName`, … |
//! | windows + `ps_script` / `ps_module` | PowerShell Operational channels, 4104 / 4103 | EVTX |
//! | windows + `ps_classic_*` | `Windows PowerShell`, 400 / 600 / 800 | EVTX |
//! | windows + a service (`security`, `system`, `windefend`, …) | the service's channel(s), see [`WINDOWS_SERVICES`] | EVTX |
//! | windows, nothing else or unknown | every Windows event (`vigil.parser: evtx`, or `winlog` for events shipped live as JSON) | EVTX |
//! | `antivirus` | Defender Operational channel | `Signature`→`ThreatName`, `Filename`→`Path` |
//! | `webserver` | `vigil.sourcetype` access_combined/access_common, or `event.dataset` apache/nginx/iis access | W3C names → ECS ([`WEB_FIELDS`]) |
//! | `proxy` | `vigil.sourcetype`/`event.dataset` squid or proxy | W3C names → ECS |
//! | linux + `sshd`/`sudo`/`auth`/`cron`/… | `process.name` of those programs | keywords → message |
//! | linux, no service | syslog-parsed events, or `host.os.type: linux` | keywords → message |
//! | linux/macos + `process_creation`/`file_event`/`network_connection` | Sysmon for Linux channel, or ECS (`event.category`, `host.os.type`) | Sysmon names, or → ECS |
//! | zeek + service X | `event.dataset: zeek.X` | Zeek's names |
//! | vigil + service `ingest` | every event (rules about the input itself, such as the `reserved_claim` tag) | unchanged |
//! | vigil + service X (`audit`, `alert`, …) | `event.dataset: vigil.X`, Vigil's own events (outside input can never carry a `vigil.*` dataset: `vigil-parse::reserved`) | unchanged |
//! | `dns` | `event.dataset` zeek.dns / suricata.dns | → their names |
//! | cloud and identity products ([`DATASET_SOURCES`]: aws cloudtrail, azure activity/sign-in/audit, gcp audit, okta, m365, kubernetes audit, github audit) | the `event.dataset` their parser (or Elastic's integration) declares | unchanged (Sigma uses the providers' own names, which are kept) |
//! | network devices (`cisco`, `fortigate`, `paloalto`, `juniper`, `huawei`, `sonicwall`, `sophos`, `checkpoint`, `mikrotik`, `category: firewall`) | the `event.dataset` of those devices' logs | `src_ip`/`dst_port`/… → ECS ([`FIREWALL_FIELDS`]) |
//! | `category: application` | every event (applications' JSON and HTTP input) | unchanged |
//! | anything else | only events whose source declares exactly that logsource by configuration (`vigil.logsource.product`/`category`/`service`, which input can never claim): none until one does; `vigil rules check` says so | unchanged |
//! | every logsource above but `windows`, `linux`, `macos` and `vigil`, too | events whose source declares exactly that logsource (`[[logsource]]` in the configuration) | the row's own |
//!
//! Field names not in a table pass through unchanged, so ECS names (`source.ip`) and names an
//! EVTX record carries (`TargetUserName`, `Provider_Name`) work as written.

use vigil_event::{Parser, field};

use crate::rule::LogSource;

/// Set on events by a listener, token or agent input whose configuration declares the
/// logsource of what it receives (input can never claim a `vigil.*` field).
pub const DECLARED_PRODUCT: &str = field::VIGIL_LOGSOURCE_PRODUCT;
/// See [`DECLARED_PRODUCT`].
pub const DECLARED_CATEGORY: &str = field::VIGIL_LOGSOURCE_CATEGORY;
/// See [`DECLARED_PRODUCT`].
pub const DECLARED_SERVICE: &str = field::VIGIL_LOGSOURCE_SERVICE;

/// Cloud, identity and network products whose parsers declare an `event.dataset` (the names
/// Elastic's integrations use, so events shipped by Filebeat or Elastic Agent belong too):
/// `(product, service or "" for any, datasets)`.
pub const DATASET_SOURCES: &[(&str, &str, &[&str])] = &[
    ("aws", "cloudtrail", &["aws.cloudtrail"]),
    ("azure", "activitylogs", &["azure.activitylogs"]),
    ("azure", "signinlogs", &["azure.signinlogs"]),
    ("azure", "auditlogs", &["azure.auditlogs"]),
    ("gcp", "gcp.audit", &["gcp.audit"]),
    ("okta", "okta", &["okta.system"]),
    ("m365", "", &["o365.audit"]),
    ("kubernetes", "audit", &["kubernetes.audit_logs"]),
    ("github", "audit", &["github.audit"]),
    ("cisco", "", &["cisco.asa", "cisco.ios", "cisco.ftd"]),
    ("fortigate", "", &["fortinet.fortigate"]),
    ("fortios", "", &["fortinet.fortigate"]),
    ("paloalto", "", &["panw.panos"]),
    ("juniper", "", &["juniper.srx", "juniper.netscreen"]),
    ("huawei", "", &["huawei.usg"]),
    ("sonicwall", "", &["sonicwall_firewall.log"]),
    ("sophos", "", &["sophos.xg"]),
    ("checkpoint", "", &["checkpoint.firewall"]),
    ("mikrotik", "", &["mikrotik.routeros"]),
];

/// Every firewall's dataset (`category: firewall`).
pub const FIREWALL_DATASETS: &[&str] = &[
    "iptables.log",
    "pfsense.log",
    "fortinet.fortigate",
    "panw.panos",
    "cisco.asa",
    "cisco.ftd",
    "cisco.ios",
    "sonicwall_firewall.log",
    "sophos.xg",
    "checkpoint.firewall",
    "juniper.srx",
    "juniper.netscreen",
    "huawei.usg",
    "mikrotik.routeros",
];

/// Sigma's generic firewall names → ECS.
pub const FIREWALL_FIELDS: &[(&str, &str)] = &[
    ("src_ip", "source.ip"),
    ("dst_ip", "destination.ip"),
    ("src_port", "source.port"),
    ("dst_port", "destination.port"),
    ("action", "event.action"),
];

/// The Sysmon channel (Windows).
pub const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
/// The Sysmon for Linux channel.
pub const LINUX_SYSMON_CHANNEL: &str = "Linux-Sysmon/Operational";

/// An extra `(field, values)` constraint.
pub type Extra = Option<(&'static str, &'static [&'static str])>;

/// Windows categories served by Sysmon: `(category, event ids, extra constraint)`.
pub const SYSMON_CATEGORIES: &[(&str, &[&str], Extra)] = &[
    ("process_creation", &["1"], None),
    ("file_change", &["2"], None),
    ("network_connection", &["3"], None),
    ("sysmon_status", &["4", "16"], None),
    ("process_termination", &["5"], None),
    ("driver_load", &["6"], None),
    ("image_load", &["7"], None),
    ("create_remote_thread", &["8"], None),
    ("raw_access_thread", &["9"], None),
    ("process_access", &["10"], None),
    ("file_event", &["11"], None),
    ("registry_add", &["12"], Some(("EventType", &["CreateKey"]))),
    (
        "registry_delete",
        &["12"],
        Some(("EventType", &["DeleteKey", "DeleteValue"])),
    ),
    ("registry_set", &["13"], None),
    ("registry_rename", &["14"], None),
    ("registry_event", &["12", "13", "14"], None),
    ("create_stream_hash", &["15"], None),
    ("pipe_created", &["17", "18"], None),
    ("wmi_event", &["19", "20", "21"], None),
    ("dns_query", &["22"], None),
    ("file_delete", &["23", "26"], None),
    ("clipboard_capture", &["24"], None),
    ("process_tampering", &["25"], None),
    ("file_delete_detected", &["26"], None),
    ("file_block_executable", &["27"], None),
    ("file_block_shredding", &["28"], None),
    ("file_executable_detected", &["29"], None),
    ("sysmon_error", &["255"], None),
];

/// Windows categories served by other channels: `(category, channels, event ids)`.
pub const WINDOWS_OTHER_CATEGORIES: &[(&str, &[&str], &[&str])] = &[
    ("ps_module", POWERSHELL_CHANNELS, &["4103"]),
    ("ps_script", POWERSHELL_CHANNELS, &["4104"]),
    ("ps_classic_start", &["Windows PowerShell"], &["400"]),
    (
        "ps_classic_provider_start",
        &["Windows PowerShell"],
        &["600"],
    ),
    ("ps_classic_script", &["Windows PowerShell"], &["800"]),
];

const POWERSHELL_CHANNELS: &[&str] = &[
    "Microsoft-Windows-PowerShell/Operational",
    "PowerShellCore/Operational",
];

/// Windows services → EVTX channels.
pub const WINDOWS_SERVICES: &[(&str, &[&str])] = &[
    ("security", &["Security"]),
    ("system", &["System"]),
    ("application", &["Application"]),
    ("sysmon", &[SYSMON_CHANNEL]),
    ("powershell", POWERSHELL_CHANNELS),
    ("powershell-classic", &["Windows PowerShell"]),
    (
        "taskscheduler",
        &["Microsoft-Windows-TaskScheduler/Operational"],
    ),
    ("wmi", &["Microsoft-Windows-WMI-Activity/Operational"]),
    ("dns-server", &["DNS Server"]),
    ("dns-server-audit", &["Microsoft-Windows-DNS-Server/Audit"]),
    (
        "dns-server-analytic",
        &["Microsoft-Windows-DNS-Server/Analytical"],
    ),
    (
        "driver-framework",
        &["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
    ),
    ("ntlm", &["Microsoft-Windows-NTLM/Operational"]),
    ("dhcp", &["Microsoft-Windows-DHCP-Server/Operational"]),
    ("msexchange-management", &["MSExchange Management"]),
    (
        "applocker",
        &[
            "Microsoft-Windows-AppLocker/MSI and Script",
            "Microsoft-Windows-AppLocker/EXE and DLL",
            "Microsoft-Windows-AppLocker/Packaged app-Deployment",
            "Microsoft-Windows-AppLocker/Packaged app-Execution",
        ],
    ),
    (
        "printservice-admin",
        &["Microsoft-Windows-PrintService/Admin"],
    ),
    (
        "printservice-operational",
        &["Microsoft-Windows-PrintService/Operational"],
    ),
    (
        "codeintegrity-operational",
        &["Microsoft-Windows-CodeIntegrity/Operational"],
    ),
    (
        "smbclient-security",
        &["Microsoft-Windows-SmbClient/Security"],
    ),
    (
        "smbclient-connectivity",
        &["Microsoft-Windows-SmbClient/Connectivity"],
    ),
    (
        "smbserver-connectivity",
        &["Microsoft-Windows-SMBServer/Connectivity"],
    ),
    (
        "firewall-as",
        &["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
    ),
    (
        "bits-client",
        &["Microsoft-Windows-Bits-Client/Operational"],
    ),
    (
        "windefend",
        &["Microsoft-Windows-Windows Defender/Operational"],
    ),
    (
        "terminalservices-localsessionmanager",
        &["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"],
    ),
    (
        "microsoft-servicebus-client",
        &["Microsoft-ServiceBus-Client"],
    ),
    ("ldap", &["Microsoft-Windows-LDAP-Client/Debug"]),
    ("ldap_debug", &["Microsoft-Windows-LDAP-Client/Debug"]),
    (
        "security-mitigations",
        &[
            "Microsoft-Windows-Security-Mitigations/Kernel Mode",
            "Microsoft-Windows-Security-Mitigations/User Mode",
        ],
    ),
    (
        "diagnosis-scripted",
        &["Microsoft-Windows-Diagnosis-Scripted/Operational"],
    ),
    ("shell-core", &["Microsoft-Windows-Shell-Core/Operational"]),
    ("openssh", &["OpenSSH/Operational"]),
    (
        "bitlocker",
        &["Microsoft-Windows-BitLocker/BitLocker Management"],
    ),
    ("vhdmp", &["Microsoft-Windows-VHDMP/Operational"]),
    (
        "appxdeployment-server",
        &["Microsoft-Windows-AppXDeploymentServer/Operational"],
    ),
    ("lsa-server", &["Microsoft-Windows-LSA/Operational"]),
    (
        "appxpackaging-om",
        &["Microsoft-Windows-AppxPackaging/Operational"],
    ),
    (
        "dns-client",
        &["Microsoft-Windows-DNS Client Events/Operational"],
    ),
    (
        "appmodel-runtime",
        &["Microsoft-Windows-AppModel-Runtime/Admin"],
    ),
    ("capi2", &["Microsoft-Windows-CAPI2/Operational"]),
    (
        "certificateservicesclient-lifecycle-system",
        &["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"],
    ),
    (
        "iis-configuration",
        &["Microsoft-IIS-Configuration/Operational"],
    ),
    (
        "kernel-shimengine",
        &["Microsoft-Windows-Kernel-ShimEngine/Operational"],
    ),
    (
        "hyper-v-worker",
        &["Microsoft-Windows-Hyper-V-Worker-Admin"],
    ),
    ("sysmon-error", &[SYSMON_CHANNEL]),
];

/// Linux services → the programs (`process.name`) that log them.
pub const LINUX_SERVICES: &[(&str, &[&str])] = &[
    ("sshd", &["sshd"]),
    ("sudo", &["sudo"]),
    (
        "auth",
        &[
            "sshd",
            "sudo",
            "su",
            "login",
            "useradd",
            "userdel",
            "usermod",
            "groupadd",
            "groupdel",
            "groupmod",
            "passwd",
            "chpasswd",
            "chage",
            "gpasswd",
            "chsh",
            "chfn",
            "systemd-logind",
            "polkitd",
            "pkexec",
            "unix_chkpwd",
            "cron",
            "CRON",
        ],
    ),
    ("cron", &["cron", "CRON", "crond", "anacron"]),
    ("vsftpd", &["vsftpd"]),
    ("clamav", &["clamd", "freshclam", "clamscan"]),
    ("guacamole", &["guacd", "guacamole"]),
    ("sshd-session", &["sshd-session"]),
];

/// Sigma (W3C extended log format) names of web server fields → ECS names Vigil's access-log
/// parser emits. `cs-uri-query` maps to the whole request target because SigmaHQ's webserver
/// rules put paths into it (`cs-uri-query|endswith: '/mgmt/tm/util/bash'`).
pub const WEB_FIELDS: &[(&str, &str)] = &[
    ("cs-uri-query", "url.original"),
    ("cs-uri", "url.original"),
    ("c-uri", "url.original"),
    ("c-uri-query", "url.original"),
    ("cs-uri-stem", "url.path"),
    ("c-uri-stem", "url.path"),
    ("c-uri-extension", "url.extension"),
    ("cs-method", "http.request.method"),
    ("sc-status", "http.response.status_code"),
    ("c-ip", "source.ip"),
    ("s-ip", "destination.ip"),
    ("s-port", "destination.port"),
    ("c-useragent", "user_agent.original"),
    ("cs-user-agent", "user_agent.original"),
    ("cs(User-Agent)", "user_agent.original"),
    ("cs-host", "url.domain"),
    ("r-dns", "url.domain"),
    ("cs-referer", "http.request.referrer"),
    ("cs-referrer", "http.request.referrer"),
    ("cs(Referer)", "http.request.referrer"),
    ("cs-username", "user.name"),
    ("cs-cookie", "http.request.cookie"),
    ("cs-content-type", "http.request.mime_type"),
    ("sc-bytes", "http.response.body.bytes"),
    ("cs-bytes", "http.request.body.bytes"),
    ("cs-version", "http.version"),
    ("src_ip", "source.ip"),
    ("dst_ip", "destination.ip"),
];

/// Sysmon process-creation names → Security 4688 names.
pub const SECURITY_4688_FIELDS: &[(&str, &str)] = &[
    ("Image", "NewProcessName"),
    ("ParentImage", "ParentProcessName"),
    ("ProcessId", "NewProcessId"),
    ("ParentProcessId", "ProcessId"),
    ("LogonId", "SubjectLogonId"),
    ("User", "SubjectUserName"),
    ("IntegrityLevel", "MandatoryLabel"),
];

/// Sysmon names → ECS, for process events from non-EVTX sources.
pub const ECS_PROCESS_FIELDS: &[(&str, &str)] = &[
    ("Image", "process.executable"),
    ("CommandLine", "process.command_line"),
    ("ParentImage", "process.parent.executable"),
    ("ParentCommandLine", "process.parent.command_line"),
    ("User", "user.name"),
    ("ProcessId", "process.pid"),
    ("ParentProcessId", "process.parent.pid"),
    ("CurrentDirectory", "process.working_directory"),
    ("OriginalFileName", "process.pe.original_file_name"),
    ("TargetFilename", "file.path"),
    ("DestinationIp", "destination.ip"),
    ("DestinationPort", "destination.port"),
    ("DestinationHostname", "destination.domain"),
    ("SourceIp", "source.ip"),
    ("SourcePort", "source.port"),
    ("Protocol", "network.transport"),
];

/// Sigma's generic DNS names → Zeek dns.log names.
pub const ZEEK_DNS_FIELDS: &[(&str, &str)] =
    &[("record_type", "qtype_name"), ("answer", "answers")];

/// Sigma's generic DNS names → Suricata EVE names.
pub const SURICATA_DNS_FIELDS: &[(&str, &str)] = &[
    ("query", "dns.rrname"),
    ("record_type", "dns.rrtype"),
    ("answer", "dns.rdata"),
];

/// Sigma's antivirus names → Microsoft Defender EventData names.
/// (EventData names lose their spaces, as Sigma spells them: `Threat Name` is `ThreatName`.)
pub const DEFENDER_FIELDS: &[(&str, &str)] = &[("Signature", "ThreatName"), ("Filename", "Path")];

/// Which table renames fields for an alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldTable {
    /// Names pass through.
    Identity,
    /// [`SECURITY_4688_FIELDS`].
    Security4688,
    /// [`WEB_FIELDS`].
    Web,
    /// [`ECS_PROCESS_FIELDS`].
    EcsProcess,
    /// [`ZEEK_DNS_FIELDS`].
    ZeekDns,
    /// [`SURICATA_DNS_FIELDS`].
    SuricataDns,
    /// [`DEFENDER_FIELDS`].
    Defender,
    /// [`FIREWALL_FIELDS`].
    Firewall,
}

impl FieldTable {
    /// The renames.
    pub fn entries(self) -> &'static [(&'static str, &'static str)] {
        match self {
            FieldTable::Identity => &[],
            FieldTable::Security4688 => SECURITY_4688_FIELDS,
            FieldTable::Web => WEB_FIELDS,
            FieldTable::EcsProcess => ECS_PROCESS_FIELDS,
            FieldTable::ZeekDns => ZEEK_DNS_FIELDS,
            FieldTable::SuricataDns => SURICATA_DNS_FIELDS,
            FieldTable::Defender => DEFENDER_FIELDS,
            FieldTable::Firewall => FIREWALL_FIELDS,
        }
    }

    /// The event field name for a Sigma field name (unchanged when not in the table).
    pub fn map(self, sigma: &str) -> String {
        self.entries()
            .iter()
            .find(|(from, _)| *from == sigma)
            .map_or_else(|| sigma.to_owned(), |(_, to)| (*to).to_owned())
    }
}

/// One way events can belong to a logsource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alternative {
    /// Every `(field, values)` must hold: the event's field equals one of the values
    /// (case-insensitively; numbers compared as text). Empty: every event.
    pub when: Vec<(String, Vec<String>)>,
    /// How Sigma field names become event field names.
    pub fields: FieldTable,
}

impl Alternative {
    fn new(when: &[(&str, &[&str])], fields: FieldTable) -> Alternative {
        Alternative {
            when: when
                .iter()
                .map(|(f, vs)| {
                    (
                        (*f).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
            fields,
        }
    }

    /// Every event.
    pub fn any() -> Alternative {
        Alternative {
            when: Vec::new(),
            fields: FieldTable::Identity,
        }
    }
}

/// What a rule's logsource resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The alternatives (any may apply).
    pub alternatives: Vec<Alternative>,
    /// Set when the table does not know the logsource (or part of it) and the rule applies
    /// more widely than its author meant.
    pub note: Option<String>,
}

impl Resolution {
    /// Whether no parser declares this logsource, so the rule runs only on events whose source
    /// declares it by configuration ([`DECLARED_PRODUCT`]): none until one does (see
    /// [`has_declared_source`]).
    pub fn no_declared_source(&self) -> bool {
        self.note.is_some()
            && !self.alternatives.is_empty()
            && self.alternatives.iter().all(|a| {
                !a.when.is_empty()
                    && a.when.iter().all(|(f, _)| {
                        f == DECLARED_PRODUCT || f == DECLARED_CATEGORY || f == DECLARED_SERVICE
                    })
            })
    }
}

/// Whether some source Vigil has declares `ls` (DESIGN §4): the table knows it (applications'
/// events, `category: application` with no product or `owasp`, included). A rule on any other
/// logsource runs only where a source declares it by configuration, and is not counted as
/// supported.
pub fn has_declared_source(ls: &LogSource) -> bool {
    !resolve(ls).no_declared_source()
}

fn lookup<'a>(table: &'a [(&str, &'a [&'a str])], key: &str) -> Option<&'a [&'a str]> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Windows events: read from `.evtx` files, or shipped live as JSON (`vigil-parse::winlog`).
const EVTX: (&str, &[&str]) = (
    field::VIGIL_PARSER,
    &[Parser::Evtx.as_str(), Parser::Winlog.as_str()],
);

/// Resolves a rule's logsource through the table (see the module documentation). Whatever
/// the table says (but for Windows, Linux, macOS and Vigil's own), events whose source declares
/// exactly this logsource by configuration ([`DECLARED_PRODUCT`]) belong too, with the field
/// names of the table's first alternative.
pub fn resolve(ls: &LogSource) -> Resolution {
    let mut r = resolve_table(ls);
    // Windows, Linux and macOS events are known by their shape, and Vigil's own by its
    // datasets: no source declares those (and their thousands of rules compile once).
    let product = ls.product.as_deref().map(str::to_ascii_lowercase);
    if r.no_declared_source()
        || matches!(
            product.as_deref(),
            Some("windows" | "linux" | "macos" | "vigil")
        )
    {
        return r;
    }
    let parts = [
        (DECLARED_PRODUCT, &ls.product),
        (DECLARED_CATEGORY, &ls.category),
        (DECLARED_SERVICE, &ls.service),
    ];
    let values: Vec<(&str, [String; 1])> = parts
        .iter()
        .filter_map(|(f, v)| v.as_deref().map(|v| (*f, [v.to_ascii_lowercase()])))
        .collect();
    if values.is_empty() {
        return r;
    }
    let fields = r
        .alternatives
        .first()
        .map_or(FieldTable::Identity, |a| a.fields);
    let when: Vec<(&str, Vec<&str>)> = values
        .iter()
        .map(|(f, v)| (*f, vec![v[0].as_str()]))
        .collect();
    let when: Vec<(&str, &[&str])> = when.iter().map(|(f, v)| (*f, v.as_slice())).collect();
    r.alternatives.push(Alternative::new(&when, fields));
    r
}

fn resolve_table(ls: &LogSource) -> Resolution {
    let product = ls.product.as_deref().map(str::to_ascii_lowercase);
    let category = ls.category.as_deref().map(str::to_ascii_lowercase);
    let service = ls.service.as_deref().map(str::to_ascii_lowercase);
    let (product, category, service) =
        (product.as_deref(), category.as_deref(), service.as_deref());
    let known = |alternatives: Vec<Alternative>| Resolution {
        alternatives,
        note: None,
    };
    let widened = |alternatives: Vec<Alternative>, what: String| Resolution {
        alternatives,
        note: Some(what),
    };
    match (product, category, service) {
        (Some("windows"), Some(cat), _) => {
            if let Some(alts) = windows_category(cat) {
                return known(alts);
            }
            widened(
                vec![Alternative::new(&[EVTX], FieldTable::Identity)],
                format!(
                    "logsource category `{cat}` is not in Vigil's table; the rule applies to every Windows event"
                ),
            )
        }
        (Some("windows"), None, Some(svc)) => match lookup(WINDOWS_SERVICES, svc) {
            Some(channels) => known(vec![Alternative::new(
                &[("Channel", channels)],
                FieldTable::Identity,
            )]),
            None => widened(
                vec![Alternative::new(&[EVTX], FieldTable::Identity)],
                format!(
                    "logsource service `{svc}` is not in Vigil's table; the rule applies to every Windows event"
                ),
            ),
        },
        (Some("windows"), None, None) => {
            known(vec![Alternative::new(&[EVTX], FieldTable::Identity)])
        }
        (
            Some(os @ ("linux" | "macos")),
            Some(cat @ ("process_creation" | "file_event" | "network_connection")),
            _,
        ) => {
            let host = if os == "linux" { "linux" } else { "macos" };
            let mut alts = Vec::new();
            if os == "linux" {
                let ids: &[&str] = match cat {
                    "process_creation" => &["1"],
                    "file_event" => &["11"],
                    _ => &["3"],
                };
                alts.push(Alternative::new(
                    &[("Channel", &[LINUX_SYSMON_CHANNEL]), ("EventID", ids)],
                    FieldTable::Identity,
                ));
            }
            let ecs_category: &[&str] = match cat {
                "process_creation" => &["process"],
                "file_event" => &["file"],
                _ => &["network"],
            };
            let mut when: Vec<(&str, &[&str])> = vec![
                ("event.category", ecs_category),
                ("host.os.type", std::slice::from_ref(&host)),
            ];
            if cat == "process_creation" {
                when.push(("event.type", &["start"]));
            }
            alts.push(Alternative::new(&when, FieldTable::EcsProcess));
            known(alts)
        }
        (Some("linux"), None, Some(svc)) => match svc {
            "syslog" => known(vec![Alternative::new(
                &[(field::VIGIL_PARSER, &[Parser::Syslog.as_str()])],
                FieldTable::Identity,
            )]),
            "auditd" => known(vec![
                Alternative::new(
                    &[(field::EVENT_DATASET, &["auditd", "auditd.log"])],
                    FieldTable::Identity,
                ),
                Alternative::new(
                    &[(field::VIGIL_SOURCETYPE, &["auditd", "linux_audit"])],
                    FieldTable::Identity,
                ),
            ]),
            _ => match lookup(LINUX_SERVICES, svc) {
                Some(programs) => known(vec![Alternative::new(
                    &[("process.name", programs)],
                    FieldTable::Identity,
                )]),
                None => widened(
                    linux_any(),
                    format!(
                        "logsource service `{svc}` is not in Vigil's table; the rule applies to every Linux event"
                    ),
                ),
            },
        },
        (Some("linux"), None, None) => known(linux_any()),
        (Some("linux"), Some(cat), _) => widened(
            linux_any(),
            format!(
                "logsource category `{cat}` for linux is not in Vigil's table; the rule applies to every Linux event"
            ),
        ),
        // Everything Vigil receives from outside, as received (rules about the input itself,
        // such as claims on Vigil's reserved names).
        (Some("vigil"), None, Some("ingest")) => known(vec![Alternative::any()]),
        // Vigil's own events: `service: audit` is its self-audit (`event.dataset: vigil.audit`).
        (Some("vigil"), None, Some(svc)) => known(vec![Alternative::new(
            &[(
                field::EVENT_DATASET,
                &[&format!("{}{svc}", field::VIGIL_PREFIX)],
            )],
            FieldTable::Identity,
        )]),
        (Some("zeek"), _, Some(svc)) => known(vec![Alternative::new(
            &[(field::EVENT_DATASET, &[&format!("zeek.{svc}")])],
            FieldTable::Identity,
        )]),
        (None, Some("webserver"), _) | (Some("apache" | "nginx" | "iis"), Some("webserver"), _) => {
            known(web())
        }
        (None, None, Some("apache")) => known(vec![Alternative::new(
            &[(field::VIGIL_SOURCETYPE, &["apache_error"])],
            FieldTable::Identity,
        )]),
        (None, None, Some("nginx")) => known(vec![Alternative::new(
            &[(field::EVENT_DATASET, &["nginx.error"])],
            FieldTable::Identity,
        )]),
        (None, Some("proxy"), _) => known(vec![
            Alternative::new(
                &[(field::VIGIL_SOURCETYPE, &["squid", "proxy"])],
                FieldTable::Web,
            ),
            Alternative::new(
                &[(field::EVENT_DATASET, &["squid.access", "proxy"])],
                FieldTable::Web,
            ),
        ]),
        (None, Some("dns"), _) => known(vec![
            Alternative::new(
                &[(field::EVENT_DATASET, &["zeek.dns"])],
                FieldTable::ZeekDns,
            ),
            Alternative::new(
                &[(field::EVENT_DATASET, &["suricata.dns"])],
                FieldTable::SuricataDns,
            ),
        ]),
        (None | Some("owasp"), Some("application"), _) => known(vec![Alternative::any()]),
        (None, Some("firewall"), _) => known(vec![Alternative::new(
            &[(field::EVENT_DATASET, FIREWALL_DATASETS)],
            FieldTable::Firewall,
        )]),
        (Some(p), _, svc)
            if DATASET_SOURCES
                .iter()
                .any(|(dp, ds, _)| *dp == p && (ds.is_empty() || Some(*ds) == svc)) =>
        {
            let datasets: Vec<&str> = DATASET_SOURCES
                .iter()
                .filter(|(dp, ds, _)| *dp == p && (ds.is_empty() || Some(*ds) == svc))
                .flat_map(|(_, _, d)| d.iter().copied())
                .collect();
            let fields = if matches!(
                p,
                "cisco"
                    | "fortigate"
                    | "fortios"
                    | "paloalto"
                    | "juniper"
                    | "huawei"
                    | "sonicwall"
                    | "sophos"
                    | "checkpoint"
                    | "mikrotik"
            ) {
                FieldTable::Firewall
            } else {
                FieldTable::Identity
            };
            known(vec![Alternative::new(
                &[(field::EVENT_DATASET, &datasets)],
                fields,
            )])
        }
        (None, Some("antivirus"), _) => known(vec![Alternative::new(
            &[
                (
                    "Channel",
                    &["Microsoft-Windows-Windows Defender/Operational"],
                ),
                ("EventID", &["1006", "1015", "1116", "1117"]),
            ],
            FieldTable::Defender,
        )]),
        (None, None, None) => widened(
            vec![Alternative::any()],
            "the rule names no logsource; it applies to every event".to_owned(),
        ),
        // No parser declares it: only a source configured to declare exactly this logsource.
        _ => {
            let mut when: Vec<(&str, &[&str])> = Vec::new();
            let (p, c, s) = (
                product.map(|p| [p]),
                category.map(|c| [c]),
                service.map(|s| [s]),
            );
            if let Some(p) = &p {
                when.push((DECLARED_PRODUCT, p.as_slice()));
            }
            if let Some(c) = &c {
                when.push((DECLARED_CATEGORY, c.as_slice()));
            }
            if let Some(s) = &s {
                when.push((DECLARED_SERVICE, s.as_slice()));
            }
            widened(
                vec![Alternative::new(&when, FieldTable::Identity)],
                format!(
                    "no parser declares logsource ({ls}); the rule runs on no event until a source declares it"
                ),
            )
        }
    }
}

fn windows_category(cat: &str) -> Option<Vec<Alternative>> {
    if let Some((_, ids, extra)) = SYSMON_CATEGORIES.iter().find(|(c, _, _)| *c == cat) {
        let mut when: Vec<(&str, &[&str])> = vec![("Channel", &[SYSMON_CHANNEL]), ("EventID", ids)];
        if let Some(extra) = extra {
            when.push(*extra);
        }
        let mut alts = vec![Alternative::new(&when, FieldTable::Identity)];
        if cat == "process_creation" {
            alts.push(Alternative::new(
                &[("Channel", &["Security"]), ("EventID", &["4688"])],
                FieldTable::Security4688,
            ));
        }
        return Some(alts);
    }
    if let Some((_, channels, ids)) = WINDOWS_OTHER_CATEGORIES.iter().find(|(c, _, _)| *c == cat) {
        return Some(vec![Alternative::new(
            &[("Channel", channels), ("EventID", ids)],
            FieldTable::Identity,
        )]);
    }
    match cat {
        "file_access" | "file_rename" => Some(vec![Alternative::new(
            &[("Provider_Name", &["Microsoft-Windows-Kernel-File"])],
            FieldTable::Identity,
        )]),
        _ => None,
    }
}

fn linux_any() -> Vec<Alternative> {
    vec![
        Alternative::new(
            &[(field::VIGIL_PARSER, &[Parser::Syslog.as_str()])],
            FieldTable::Identity,
        ),
        Alternative::new(&[("host.os.type", &["linux"])], FieldTable::Identity),
    ]
}

fn web() -> Vec<Alternative> {
    vec![
        Alternative::new(
            &[(
                field::VIGIL_SOURCETYPE,
                &["access_combined", "access_common"],
            )],
            FieldTable::Web,
        ),
        Alternative::new(
            &[(
                field::EVENT_DATASET,
                &["apache.access", "nginx.access", "iis.access", "web.access"],
            )],
            FieldTable::Web,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource {
            product: p.map(Into::into),
            category: c.map(Into::into),
            service: s.map(Into::into),
        }
    }

    #[test]
    fn windows() {
        let r = resolve(&ls(Some("windows"), Some("process_creation"), None));
        assert!(r.note.is_none());
        assert_eq!(r.alternatives.len(), 2);
        assert_eq!(r.alternatives[1].fields.map("Image"), "NewProcessName");
        assert_eq!(r.alternatives[0].fields.map("Image"), "Image");
        let r = resolve(&ls(Some("windows"), None, Some("security")));
        assert_eq!(r.alternatives[0].when[0].1, vec!["Security"]);
        let r = resolve(&ls(Some("windows"), None, Some("nonesuch")));
        assert!(r.note.is_some());
    }

    #[test]
    fn others() {
        let r = resolve(&ls(None, Some("webserver"), None));
        assert_eq!(r.alternatives[0].fields.map("cs-uri-query"), "url.original");
        assert_eq!(
            r.alternatives[0].fields.map("sc-status"),
            "http.response.status_code"
        );
        let r = resolve(&ls(Some("linux"), None, Some("sshd")));
        assert_eq!(r.alternatives[0].when[0].0, "process.name");
        let r = resolve(&ls(Some("aws"), None, Some("cloudtrail")));
        assert_eq!(
            r.alternatives[0].when,
            vec![(
                field::EVENT_DATASET.to_owned(),
                vec!["aws.cloudtrail".to_owned()]
            )]
        );
        assert!(r.note.is_none());
        let r = resolve(&ls(Some("cisco"), Some("accounting"), Some("aaa")));
        assert!(!r.no_declared_source());
        assert_eq!(r.alternatives[0].fields.map("src_ip"), "source.ip");
        // A source may declare a known logsource by configuration too, with its field names.
        let r = resolve(&ls(None, Some("firewall"), None));
        assert!(
            r.alternatives[0].when[0]
                .1
                .contains(&"mikrotik.routeros".to_owned())
        );
        let declared = r.alternatives.last().unwrap();
        assert_eq!(
            declared.when,
            vec![(DECLARED_CATEGORY.to_owned(), vec!["firewall".to_owned()])]
        );
        assert_eq!(declared.fields.map("dst_port"), "destination.port");
        assert_eq!(
            resolve(&ls(Some("juniper"), None, Some("bgp"))).alternatives[0].when[0].1,
            vec!["juniper.srx".to_owned(), "juniper.netscreen".to_owned()]
        );
        // No parser declares it: only a source declaring exactly this logsource.
        let r = resolve(&ls(Some("salesforce"), None, Some("eventmonitoring")));
        assert!(r.no_declared_source());
        assert_eq!(
            r.alternatives[0].when,
            vec![
                (DECLARED_PRODUCT.to_owned(), vec!["salesforce".to_owned()]),
                (
                    DECLARED_SERVICE.to_owned(),
                    vec!["eventmonitoring".to_owned()]
                ),
            ]
        );
        assert!(!has_declared_source(&ls(Some("salesforce"), None, None)));
        assert!(has_declared_source(&ls(
            Some("owasp"),
            Some("application"),
            None
        )));
    }
}
