//! Who this process is in a distributed run, read from the launcher's environment (docs/DISTRIBUTED.md, *What is
//! read*): torchrun's variables first, then SLURM's, otherwise a single process. Pure data: nothing here connects.

use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// The launcher a run's identity came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// No launcher: one process, rank 0 of 1.
    Single,
    /// torchrun (or anything that sets its variables: a Kubeflow PyTorchJob, `torch.distributed.run`).
    Torchrun,
    /// `srun` under SLURM, with `MASTER_ADDR` and `MASTER_PORT` given by the batch script.
    Slurm,
}

impl std::fmt::Display for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Launcher::Single => "no launcher",
            Launcher::Torchrun => "torchrun",
            Launcher::Slurm => "SLURM",
        })
    }
}

/// One process's place in a distributed run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Launch {
    /// Where the identity came from.
    pub launcher: Launcher,
    /// This process's rank, from 0.
    pub rank: usize,
    /// Processes in the run.
    pub world: usize,
    /// This process's rank among those on its machine.
    pub local_rank: usize,
    /// Processes on this machine.
    pub local_world: usize,
    /// The store's host (`MASTER_ADDR`); empty for a single process.
    pub master_addr: String,
    /// The store's port (`MASTER_PORT`); 0 for a single process.
    pub master_port: u16,
    /// How many times torchrun has restarted the group (`TORCHELASTIC_RESTART_COUNT`); 0 otherwise.
    pub restart_count: u64,
    /// Whether torchrun's agent already hosts the store, so that every rank connects as a client
    /// (`TORCHELASTIC_USE_AGENT_STORE`); otherwise rank 0 hosts it.
    pub agent_store: bool,
    /// Comma-separated network interfaces Gloo binds to (`GLOO_SOCKET_IFNAME`, as PyTorch reads it); empty for the
    /// default device, the address this machine's hostname resolves to.
    pub interfaces: String,
    /// How long any collective, and joining the group, may wait for the other ranks (`SPIDERNET_DIST_TIMEOUT`).
    pub timeout: Duration,
}

/// How long a collective waits for the other ranks unless `SPIDERNET_DIST_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A launcher's environment that does not describe a valid run.
#[derive(Debug, Error, PartialEq)]
pub enum LaunchError {
    /// A variable that must be there is missing.
    #[error("{launcher} sets {present} but not {missing}")]
    Missing {
        /// The launcher recognised.
        launcher: &'static str,
        /// A variable that identified it.
        present: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A variable that is not a number of the right kind.
    #[error("{name}={value:?} is not {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A rank outside its world.
    #[error("{rank_name}={rank} is not below {world_name}={world}")]
    RankOutside {
        /// The rank's variable.
        rank_name: &'static str,
        /// Its value.
        rank: usize,
        /// The world's variable.
        world_name: &'static str,
        /// Its value.
        world: usize,
    },
}

/// The variables torchrun sets, in the order they are read.
pub const TORCHRUN_VARIABLES: [&str; 8] = [
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_USE_AGENT_STORE",
];

/// The variables read under SLURM, in the order they are read.
pub const SLURM_VARIABLES: [&str; 6] = [
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "SLURM_NTASKS_PER_NODE",
    "MASTER_ADDR",
    "MASTER_PORT",
];

/// The variables read whatever the launcher, after its own.
pub const COMMON_VARIABLES: [&str; 2] = ["GLOO_SOCKET_IFNAME", "SPIDERNET_DIST_TIMEOUT"];

impl Launch {
    /// A single process: rank 0 of 1.
    pub fn single() -> Self {
        Launch {
            launcher: Launcher::Single,
            rank: 0,
            world: 1,
            local_rank: 0,
            local_world: 1,
            master_addr: String::new(),
            master_port: 0,
            restart_count: 0,
            agent_store: false,
            interfaces: String::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This process's place, read from its environment.
    pub fn from_env() -> Result<Self, LaunchError> {
        let names = TORCHRUN_VARIABLES
            .iter()
            .chain(&SLURM_VARIABLES)
            .chain(&COMMON_VARIABLES);
        let vars = names
            .filter_map(|&name| std::env::var(name).ok().map(|value| (name, value)))
            .collect();
        Self::from_vars(&vars)
    }

    /// This process's place, read from `vars`: torchrun's when `RANK` or `WORLD_SIZE` is set, SLURM's when
    /// `SLURM_PROCID` is, otherwise a single process.
    pub fn from_vars(vars: &BTreeMap<&str, String>) -> Result<Self, LaunchError> {
        let mut launch = if vars.contains_key("RANK") || vars.contains_key("WORLD_SIZE") {
            Self::torchrun(vars)?
        } else if vars.contains_key("SLURM_PROCID") {
            Self::slurm(vars)?
        } else {
            return Ok(Self::single());
        };
        launch.interfaces = vars.get("GLOO_SOCKET_IFNAME").cloned().unwrap_or_default();
        if let Some(value) = vars.get("SPIDERNET_DIST_TIMEOUT") {
            launch.timeout = humantime::parse_duration(value)
                .ok()
                .filter(|t| !t.is_zero())
                .ok_or_else(|| LaunchError::Invalid {
                    name: "SPIDERNET_DIST_TIMEOUT",
                    value: value.clone(),
                    expected: "a positive duration such as 90s or 5m",
                })?;
        }
        Ok(launch)
    }

    fn torchrun(vars: &BTreeMap<&str, String>) -> Result<Self, LaunchError> {
        let need = |missing| require(vars, "torchrun", "RANK or WORLD_SIZE", missing);
        let rank = number(need("RANK")?, "RANK")?;
        let world = positive(need("WORLD_SIZE")?, "WORLD_SIZE")?;
        within("RANK", rank, "WORLD_SIZE", world)?;
        let local_rank = vars.get("LOCAL_RANK").map_or(Ok(0), |v| number(v, "LOCAL_RANK"))?;
        let local_world = vars
            .get("LOCAL_WORLD_SIZE")
            .map_or(Ok(1), |v| positive(v, "LOCAL_WORLD_SIZE"))?;
        within("LOCAL_RANK", local_rank, "LOCAL_WORLD_SIZE", local_world)?;
        let restart_count = vars
            .get("TORCHELASTIC_RESTART_COUNT")
            .map_or(Ok(0), |v| number(v, "TORCHELASTIC_RESTART_COUNT"))? as u64;
        let agent_store = match vars.get("TORCHELASTIC_USE_AGENT_STORE").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(v) => {
                return Err(LaunchError::Invalid {
                    name: "TORCHELASTIC_USE_AGENT_STORE",
                    value: v,
                    expected: "true or false",
                });
            }
        };
        Ok(Launch {
            restart_count,
            agent_store,
            ..Self::placed(Launcher::Torchrun, [rank, world, local_rank, local_world], need)?
        })
    }

    /// A process of `launcher` at `[rank, world, local_rank, local_world]`, its store's address read by `need`.
    fn placed<'a>(
        launcher: Launcher,
        [rank, world, local_rank, local_world]: [usize; 4],
        need: impl Fn(&'static str) -> Result<&'a String, LaunchError>,
    ) -> Result<Self, LaunchError> {
        Ok(Launch {
            launcher,
            rank,
            world,
            local_rank,
            local_world,
            master_addr: need("MASTER_ADDR")?.clone(),
            master_port: port(need("MASTER_PORT")?)?,
            ..Self::single()
        })
    }

    fn slurm(vars: &BTreeMap<&str, String>) -> Result<Self, LaunchError> {
        let need = |missing| require(vars, "SLURM", "SLURM_PROCID", missing);
        let rank = number(need("SLURM_PROCID")?, "SLURM_PROCID")?;
        let world = positive(need("SLURM_NTASKS")?, "SLURM_NTASKS")?;
        within("SLURM_PROCID", rank, "SLURM_NTASKS", world)?;
        let local_rank = vars
            .get("SLURM_LOCALID")
            .map_or(Ok(0), |v| number(v, "SLURM_LOCALID"))?;
        // SLURM_NTASKS_PER_NODE is set only with --ntasks-per-node; without it the local world is unknown and
        // only the local rank is used.
        let local_world = match vars.get("SLURM_NTASKS_PER_NODE") {
            Some(v) => positive(v, "SLURM_NTASKS_PER_NODE")?,
            None => local_rank + 1,
        };
        within("SLURM_LOCALID", local_rank, "SLURM_NTASKS_PER_NODE", local_world)?;
        Self::placed(Launcher::Slurm, [rank, world, local_rank, local_world], need)
    }

    /// Whether this run has more than one process.
    pub fn is_distributed(&self) -> bool {
        self.world > 1
    }

    /// Whether this process hosts the store: rank 0, unless torchrun's agent hosts it.
    pub fn hosts_store(&self) -> bool {
        self.rank == 0 && !self.agent_store
    }

    /// The store's key prefix: one per torchrun restart, so that a restarted group never reads the keys of the
    /// attempt before it.
    pub fn store_prefix(&self) -> String {
        format!("spidernet/attempt_{}", self.restart_count)
    }

    /// The store's address, as `host:port`.
    pub fn store_address(&self) -> String {
        format!("{}:{}", self.master_addr, self.master_port)
    }
}

fn require<'a>(
    vars: &'a BTreeMap<&str, String>,
    launcher: &'static str,
    present: &'static str,
    missing: &'static str,
) -> Result<&'a String, LaunchError> {
    vars.get(missing).ok_or(LaunchError::Missing {
        launcher,
        present,
        missing,
    })
}

fn number(value: &str, name: &'static str) -> Result<usize, LaunchError> {
    value.trim().parse().map_err(|_| LaunchError::Invalid {
        name,
        value: value.to_string(),
        expected: "a whole number",
    })
}

fn positive(value: &str, name: &'static str) -> Result<usize, LaunchError> {
    match number(value, name) {
        Ok(0) | Err(_) => Err(LaunchError::Invalid {
            name,
            value: value.to_string(),
            expected: "a positive whole number",
        }),
        ok => ok,
    }
}

fn port(value: &str) -> Result<u16, LaunchError> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| LaunchError::Invalid {
            name: "MASTER_PORT",
            value: value.to_string(),
            expected: "a port number from 1 to 65535",
        })
}

fn within(rank_name: &'static str, rank: usize, world_name: &'static str, world: usize) -> Result<(), LaunchError> {
    if rank < world {
        Ok(())
    } else {
        Err(LaunchError::RankOutside {
            rank_name,
            rank,
            world_name,
            world,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|&(k, v)| (k, v.to_string())).collect()
    }

    #[test]
    fn no_launcher_is_one_process() {
        let launch = Launch::from_vars(&vars(&[("GLOO_SOCKET_IFNAME", "lo")])).unwrap();
        assert_eq!(launch, Launch::single());
        assert!(!launch.is_distributed());
    }

    #[test]
    fn torchrun_with_its_agent_store() {
        let launch = Launch::from_vars(&vars(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "10.0.0.7"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("GLOO_SOCKET_IFNAME", "eth0"),
            ("SPIDERNET_DIST_TIMEOUT", "90s"),
            // SLURM's are ignored when torchrun's are there.
            ("SLURM_PROCID", "0"),
        ]))
        .unwrap();
        assert_eq!(launch.launcher, Launcher::Torchrun);
        assert_eq!(
            (launch.rank, launch.world, launch.local_rank, launch.local_world),
            (3, 4, 1, 2)
        );
        assert_eq!(launch.store_address(), "10.0.0.7:29500");
        assert_eq!(launch.store_prefix(), "spidernet/attempt_2");
        assert!(launch.agent_store && !launch.hosts_store());
        assert_eq!(launch.interfaces, "eth0");
        assert_eq!(launch.timeout, Duration::from_secs(90));
    }

    #[test]
    fn rank_zero_hosts_the_store_without_an_agent() {
        let launch = Launch::from_vars(&vars(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "1234"),
        ]))
        .unwrap();
        assert!(launch.hosts_store());
        assert_eq!((launch.local_rank, launch.local_world, launch.restart_count), (0, 1, 0));
        assert_eq!(launch.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn slurm_needs_the_store_address() {
        let base = [("SLURM_PROCID", "1"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "1")];
        assert_eq!(
            Launch::from_vars(&vars(&base)).unwrap_err(),
            LaunchError::Missing {
                launcher: "SLURM",
                present: "SLURM_PROCID",
                missing: "MASTER_ADDR"
            }
        );
        let mut full = vars(&base);
        full.insert("MASTER_ADDR", "node1".into());
        full.insert("MASTER_PORT", "29400".into());
        let launch = Launch::from_vars(&full).unwrap();
        assert_eq!(launch.launcher, Launcher::Slurm);
        assert_eq!(
            (launch.rank, launch.world, launch.local_rank, launch.local_world),
            (1, 2, 1, 2)
        );
        assert!(!launch.hosts_store());
    }

    #[test]
    fn bad_values_are_named() {
        let err = |pairs: &[(&'static str, &str)]| Launch::from_vars(&vars(pairs)).unwrap_err().to_string();
        let good = [("MASTER_ADDR", "h"), ("MASTER_PORT", "1")];
        assert_eq!(
            err(&[&good[..], &[("RANK", "2"), ("WORLD_SIZE", "2")]].concat()),
            "RANK=2 is not below WORLD_SIZE=2"
        );
        assert_eq!(
            err(&[&good[..], &[("RANK", "x"), ("WORLD_SIZE", "2")]].concat()),
            "RANK=\"x\" is not a whole number"
        );
        assert_eq!(
            err(&[
                ("RANK", "0"),
                ("WORLD_SIZE", "2"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "70000")
            ]),
            "MASTER_PORT=\"70000\" is not a port number from 1 to 65535"
        );
        assert_eq!(
            err(&[("RANK", "0"), ("WORLD_SIZE", "2")]),
            "torchrun sets RANK or WORLD_SIZE but not MASTER_ADDR"
        );
        assert_eq!(
            err(&[
                &good[..],
                &[("RANK", "0"), ("WORLD_SIZE", "1"), ("SPIDERNET_DIST_TIMEOUT", "0s")]
            ]
            .concat()),
            "SPIDERNET_DIST_TIMEOUT=\"0s\" is not a positive duration such as 90s or 5m"
        );
    }
}
