import pytest

from stratowatch.tracking.plots_csv import PlotsFileError, read_plots_csv

HEADER = "time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n"


def _write(tmp_path, body, header=HEADER):
    p = tmp_path / "plots.csv"
    p.write_text(header + body)
    return p


def test_reads_columns_and_sensors(tmp_path):
    p = _write(tmp_path, "0.0,r1,1,2,3,150,300\n0.0,r2,4,5,6,100,200\n10.0,r1,7,8,9,150,300\n")
    plots = read_plots_csv(p)
    assert plots.rows_read == 3 and plots.time_s.tolist() == [0.0, 0.0, 10.0]
    assert plots.xyz[2].tolist() == [7.0, 8.0, 9.0]
    assert [plots.sensor_ids[i] for i in plots.sensor_index] == ["r1", "r2", "r1"]
    assert plots.line.tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0,r1,1,2,3,150,300\n0,r1,1,2,nan,150,300\n", "plots.csv:3: field 'z_m': not a finite number"),
        ("0,r1,1,2,3,150,300\n0,r1,1,abc,3,150,300\n", "plots.csv:3: field 'y_m': not a number: 'abc'"),
        ("0,r1,1,2,3,-5,300\n", "plots.csv:2: field 'sigma_m': sigma must be positive, got -5"),
        ("0,r1,1,2,3,150\n", "plots.csv:2: field 'row': 6 fields, expected 7"),
        ("0,r1,1,2,inf,150,300\n", "plots.csv:2: field 'z_m': not a finite number"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, body, message):
    with pytest.raises(PlotsFileError) as e:
        read_plots_csv(_write(tmp_path, body))
    assert message in str(e.value)


def test_unknown_or_missing_columns(tmp_path):
    with pytest.raises(PlotsFileError, match=r"plots.csv:1: header: unknown column\(s\) 'speed'"):
        read_plots_csv(_write(tmp_path, "", header="time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m,speed\n"))
    with pytest.raises(PlotsFileError, match="missing column"):
        read_plots_csv(_write(tmp_path, "", header="time_s,x_m,y_m,z_m,sigma_m,sigma_z_m\n"))


def test_quarantine_keeps_going_and_accounts_for_every_row(tmp_path):
    body = "0,r1,1,2,3,150,300\n0,r1,x,2,3,150,300\n5,r1,1,2,3,0,300\n10,r1,1,2,3,150,300\n"
    plots = read_plots_csv(_write(tmp_path, body), quarantine=True)
    assert plots.rows_read == 4
    assert plots.time_s.size == 2 and len(plots.quarantined) == 2
    assert [q["line"] for q in plots.quarantined] == [3, 4]
    assert plots.quarantined[0]["field"] == "x_m" and plots.quarantined[0]["raw"] == "0,r1,x,2,3,150,300"
    assert plots.quarantined[1]["reason"].startswith("sigma must be positive")
