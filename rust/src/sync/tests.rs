use super::{sync_files, sync_grouped};

#[cfg(unix)]
const EBADF: i32 = libc::EBADF;
#[cfg(windows)]
const EBADF: i32 = 9;

#[test]
fn bad_descriptors_report_ebadf() {
    assert_eq!(sync_files(&[]), Vec::<i32>::new());
    assert_eq!(sync_files(&[-1]), vec![EBADF]);
    assert_eq!(sync_files(&[-1, -1]), vec![EBADF; 2]);
    assert_eq!(sync_files(&[-1; 5]), vec![EBADF; 5]);
}

#[cfg(unix)]
#[test]
fn open_descriptors_are_synced_and_left_open() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir();
    let mut files = Vec::new();
    for index in 0..6 {
        let path = dir.join(format!("simulacra-sync-{index}-{}", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"data\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        files.push(file);
    }
    let fds: Vec<i32> = files.iter().map(AsRawFd::as_raw_fd).collect();
    for count in [1, 2, 6] {
        assert_eq!(sync_files(&fds[..count]), vec![0; count]);
    }
    let mixed = [fds[0], -1, fds[1], fds[2], fds[3]];
    assert_eq!(sync_files(&mixed), vec![0, EBADF, 0, 0, 0]);
    for fd in fds {
        // SAFETY: probing a descriptor number: F_GETFD fails on a closed one.
        assert_ne!(
            unsafe { libc::fcntl(fd, libc::F_GETFD) },
            -1,
            "fd {fd} closed"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn syncfs_is_trusted_from_linux_5_8() {
    use super::linux::release_reports_syncfs_errors;
    for (release, trusted) in [
        ("6.18.44-fc-v1045", true),
        ("5.8.0", true),
        ("5.15.0-91-generic", true),
        ("10.0", true),
        ("5.7.19", false),
        ("5.4.0-150-generic", false),
        ("4.19.0-26-amd64", false),
        ("5", false),
        ("", false),
        ("garbage", false),
    ] {
        assert_eq!(release_reports_syncfs_errors(release), trusted, "{release}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_batch_reports_what_fdatasync_refuses_as_fdatasync_does() {
    use super::sync_one;
    use std::os::fd::AsRawFd;
    let mut pipe = [0; 2];
    // SAFETY: pipe fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let proc_file = std::fs::File::open("/proc/self/status").unwrap();
    for fd in [pipe[1], proc_file.as_raw_fd()] {
        let alone = sync_one(fd);
        assert_ne!(alone, 0, "fd {fd}");
        assert_eq!(sync_files(&[fd; 4]), vec![alone; 4], "fd {fd}");
    }
    for fd in pipe {
        // SAFETY: closing the pipe this test opened.
        unsafe { libc::close(fd) };
    }
}

#[test]
fn each_file_system_gets_its_own_syncfs_and_small_groups_a_sync_each() {
    const EIO: i32 = 5;
    let fds = [10, 11, 20, 12, 13, 21, 30, 31, 32, 33];
    let devices = [
        Some(1),
        Some(1),
        Some(2),
        Some(1),
        Some(1),
        Some(2),
        None,
        Some(3),
        Some(3),
        Some(3),
    ];
    let (mut whole, mut single) = (Vec::new(), Vec::new());
    let errnos = sync_grouped(
        &fds,
        &devices,
        |fd| {
            whole.push(fd);
            true
        },
        |fd| {
            single.push(fd);
            i32::from(fd == 21) * EIO
        },
    );
    assert_eq!(whole, vec![10]); // device 1 has four; 2 and 3 too few; None alone
    single.sort_unstable();
    assert_eq!(single, vec![20, 21, 30, 31, 32, 33]);
    assert_eq!(errnos, vec![0, 0, 0, 0, 0, EIO, 0, 0, 0, 0]);
    // a failed syncfs falls back to a sync of each file of that file system
    let mut single = Vec::new();
    let errnos = sync_grouped(
        &fds[..5],
        &devices[..5],
        |_| false,
        |fd| {
            single.push(fd);
            0
        },
    );
    assert_eq!((errnos, single.len()), (vec![0; 5], 5));
}

#[cfg(unix)]
#[test]
fn the_committer_delivers_each_outcome_to_its_channel() {
    use super::commit::{Channel, Committer};
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    let path = std::env::temp_dir().join(format!("simulacra-commit-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let committer = Committer::new();
    let (one, other) = (
        Arc::new(Channel::new().unwrap()),
        Arc::new(Channel::new().unwrap()),
    );
    assert!(committer.submit(file.as_raw_fd(), &one).unwrap());
    assert!(committer.submit(-1, &other).unwrap());
    let mut got = (Vec::new(), Vec::new());
    while got.0.is_empty() || got.1.is_empty() {
        let mut polled = [one.fileno(), other.fileno()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: poll reads and fills the live array it is given.
        assert!(unsafe { libc::poll(polled.as_mut_ptr(), 2, 30_000) } > 0);
        got.0.extend(one.drain());
        got.1.extend(other.drain());
    }
    assert_eq!(got, (vec![(file.as_raw_fd(), 0)], vec![(-1, EBADF)]));
    committer.stop();
    assert!(!committer.submit(file.as_raw_fd(), &one).unwrap());
}

#[cfg(unix)]
#[test]
fn a_panicking_sync_fails_its_batch_and_the_thread_serves_the_next() {
    use super::commit::{Channel, Committer};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    static PANICKED: AtomicBool = AtomicBool::new(false);
    fn panics_once(fds: &[i32]) -> Vec<i32> {
        assert!(
            PANICKED.swap(true, Ordering::SeqCst),
            "the sync's own fault"
        );
        fds.iter().map(|_| 0).collect()
    }
    let committer = Committer::with_sync(panics_once);
    let channel = Arc::new(Channel::new().unwrap());
    let mut outcomes = Vec::new();
    for fd in [-7, -8] {
        assert!(committer.submit(fd, &channel).unwrap());
        while !outcomes.iter().any(|&(done, _)| done == fd) {
            let mut polled = libc::pollfd {
                fd: channel.fileno(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll reads and fills the live struct it is given.
            assert!(unsafe { libc::poll(&raw mut polled, 1, 30_000) } > 0);
            outcomes.extend(channel.drain());
        }
    }
    assert_eq!(outcomes, vec![(-7, libc::EIO), (-8, 0)]);
    committer.stop();
}
