from fractions import Fraction

from p2porch.netoverlay.ingress import INGRESS_CHAIN, IngressPort, port_chain, render_ingress


def test_each_endpoint_gets_an_equal_share_and_the_last_rule_is_unconditional():
    port = IngressPort(8080, 80, "tcp", ("10.241.2.5", "10.241.1.3", "10.241.3.4"))
    text = render_ingress([port])
    chain = port_chain(port)
    assert len(chain) <= 28
    rules = [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]
    targets = [r.split("--to-destination ")[1] for r in rules]
    assert targets == ["10.241.1.3:80", "10.241.2.5:80", "10.241.3.4:80"]
    assert "statistic" not in rules[-1]
    # P(pick i) = p_i * prod(1 - p_j, j < i) must be 1/3 for every endpoint.
    probs = [
        Fraction(r.split("--probability ")[1].split()[0]) if "statistic" in r else Fraction(1) for r in rules
    ]
    remaining, shares = Fraction(1), []
    for p in probs:
        shares.append(remaining * p)
        remaining *= 1 - p
    assert all(abs(s - Fraction(1, 3)) < Fraction(1, 10**8) for s in shares)
    assert f"-A {INGRESS_CHAIN} -p tcp --dport 8080 -j {chain}" in text
    assert text.startswith("*nat\n") and text.endswith("COMMIT\n")


def test_a_port_without_healthy_tasks_returns_instead_of_dnat():
    port = IngressPort(9090, 90, "udp", ())
    assert f"-A {port_chain(port)} -j RETURN" in render_ingress([port])
    assert "DNAT" not in render_ingress([port])
