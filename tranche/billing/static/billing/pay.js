// The Stripe Payment Element on the pay page. A file rather than an inline script, so the
// page's Content-Security-Policy allows scripts from this site and js.stripe.com only.
(function () {
  const form = document.getElementById("payment-form");
  if (!form) {
    return;
  }
  const config = JSON.parse(document.getElementById("stripe-config").textContent);
  const stripe = Stripe(config.publishable_key);
  const elements = stripe.elements({ clientSecret: config.client_secret });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    document.getElementById("pay-button").disabled = true;
    const result = await stripe.confirmPayment({ elements: elements, redirect: "if_required" });
    if (result.error) {
      const message = document.getElementById("payment-message");
      message.textContent = result.error.message;
      message.hidden = false;
      document.getElementById("pay-button").disabled = false;
    } else {
      window.location.assign(form.dataset.doneUrl);
    }
  });
})();
