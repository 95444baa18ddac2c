//! The CMOS real-time clock: the date and time, read once at boot.
//!
//! Two I/O ports: write a register number to 0x70, read it at 0x71. The
//! clock updates its registers once a second; while status register A's
//! "update in progress" bit is set they may be torn, so we wait for it to
//! clear and read until two passes agree (OSDev's and Linux's
//! `mc146818_get_time` method). Status register B says whether values are
//! BCD and whether hours are 12-hour. QEMU's RTC keeps UTC (`-rtc base=utc`
//! is its default), as Linux assumes on a PC unless told otherwise.

use x86_64::instructions::port::Port;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
const UPDATE_IN_PROGRESS: u8 = 0x80;
const BINARY: u8 = 0x04;
const HOURS_24: u8 = 0x02;
const PM: u8 = 0x80;

fn register(reg: u8) -> u8 {
    // SAFETY: selecting and reading a CMOS register has no effect on
    // memory; bit 7 of the index (NMI disable) stays clear.
    unsafe {
        Port::<u8>::new(INDEX).write(reg & 0x7f);
        Port::<u8>::new(DATA).read()
    }
}

/// Seconds, minutes, hours, day, month, year (two digits), century-less.
fn raw() -> [u8; 6] {
    while register(STATUS_A) & UPDATE_IN_PROGRESS != 0 {
        core::hint::spin_loop();
    }
    [0x00, 0x02, 0x04, 0x07, 0x08, 0x09].map(register)
}

/// The RTC's time as seconds since the Unix epoch (UTC).
pub fn read_unix_time() -> u64 {
    let mut now = raw();
    loop {
        let again = raw();
        if again == now {
            break;
        }
        now = again;
    }
    let status = register(STATUS_B);
    let decode = |v: u8| {
        if status & BINARY != 0 {
            v
        } else {
            (v & 0x0f) + (v >> 4) * 10
        }
    };
    let [second, minute, hour, day, month, year] = now;
    let mut hours = decode(hour & !PM);
    if status & HOURS_24 == 0 {
        hours %= 12;
        if hour & PM != 0 {
            hours += 12;
        }
    }
    // Two-digit years: this kernel was written in the 2020s.
    let year = 2000 + u64::from(decode(year));
    let days = days_from_civil(year, u64::from(decode(month)), u64::from(decode(day)));
    days * 86_400
        + u64::from(hours) * 3600
        + u64::from(decode(minute)) * 60
        + u64::from(decode(second))
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian calendar;
/// Howard Hinnant's `days_from_civil`, for years from 1970 on).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
