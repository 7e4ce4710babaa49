"""Static vocabulary of the generated shop: the category tree, brands, names and countries.

Each top category has its own adjectives, features, uses and product parts, so titles,
descriptions, reviews and queries of different categories use different words (a text encoder
can tell them apart, and a miscategorised product is visibly "of another category").
"""

from __future__ import annotations

# leaf: (title noun, query phrases, median price USD, attributes)
Leaf = tuple[str, tuple[str, ...], float, tuple[str, ...]]

TREE: dict[str, dict] = {
    "Electronics": {
        "adjectives": ("Wireless", "Smart", "Ultra-Slim", "Pro", "Compact", "High-Performance", "Portable", "Digital"),
        "features": ("fast charging", "Bluetooth 5.3 connectivity", "active noise cancellation", "a high-resolution display",
                     "long battery life", "a USB-C port", "a low-latency chipset", "an energy-efficient processor",
                     "a backlit interface", "firmware updates over Wi-Fi"),
        "uses": ("work calls", "gaming sessions", "streaming movies", "the home office", "travel", "video editing"),
        "parts": ("battery", "screen", "sound", "charging port", "buttons", "connection"),
        "subs": {
            "Phones & Accessories": {
                "Smartphones": ("Smartphone", ("smartphone", "android phone", "cell phone", "5g phone", "unlocked phone"), 420.0, ("128GB", "256GB", "5G", "Dual SIM")),
                "Phone Cases": ("Phone Case", ("phone case", "iphone case", "shockproof case", "clear phone case"), 18.0, ("Shockproof", "Clear", "MagSafe Compatible", "Slim Fit")),
                "Chargers & Cables": ("Charger", ("usb c charger", "fast charger", "charging cable", "wall charger"), 22.0, ("65W", "USB-C", "2-Pack", "GaN")),
            },
            "Audio": {
                "Headphones": ("Headphones", ("headphones", "over ear headphones", "noise cancelling headphones", "studio headphones"), 120.0, ("Over-Ear", "Noise Cancelling", "Foldable", "40h Battery")),
                "Earbuds": ("Earbuds", ("earbuds", "wireless earbuds", "bluetooth earbuds", "sport earbuds"), 60.0, ("True Wireless", "IPX5", "with Charging Case", "ANC")),
                "Bluetooth Speakers": ("Bluetooth Speaker", ("bluetooth speaker", "portable speaker", "waterproof speaker", "party speaker"), 70.0, ("Waterproof", "360 Sound", "20W", "Stereo Pair")),
            },
            "Computers": {
                "Laptops": ("Laptop", ("laptop", "gaming laptop", "ultrabook", "notebook computer", "14 inch laptop"), 900.0, ("16GB RAM", "512GB SSD", "14-Inch", "OLED")),
                "Monitors": ("Monitor", ("monitor", "4k monitor", "gaming monitor", "computer screen"), 260.0, ("27-Inch", "4K UHD", "144Hz", "IPS")),
                "Keyboards": ("Keyboard", ("keyboard", "mechanical keyboard", "wireless keyboard", "gaming keyboard"), 65.0, ("Mechanical", "RGB", "Tenkeyless", "Low-Profile")),
            },
            "Cameras": {
                "Digital Cameras": ("Digital Camera", ("digital camera", "mirrorless camera", "vlogging camera", "camera"), 650.0, ("24MP", "4K Video", "Mirrorless", "Kit")),
                "Camera Lenses": ("Camera Lens", ("camera lens", "prime lens", "zoom lens", "50mm lens"), 380.0, ("50mm f/1.8", "Wide Angle", "Telephoto", "Stabilised")),
            },
        },
    },
    "Home & Kitchen": {
        "adjectives": ("Stainless Steel", "Non-Stick", "Heavy-Duty", "Classic", "Cast Iron", "Premium", "Dishwasher-Safe", "Ergonomic"),
        "features": ("a non-stick ceramic coating", "an ergonomic stay-cool handle", "a tempered glass lid", "even heat distribution",
                     "dishwasher-safe parts", "a powerful 1200W motor", "a brushed stainless steel finish", "a BPA-free jar",
                     "a soft breathable cotton weave", "oven-safe construction up to 260C"),
        "uses": ("everyday cooking", "family dinners", "meal prep", "a cosy bedroom", "busy mornings", "baking at home"),
        "parts": ("handle", "lid", "coating", "motor", "blade", "fabric"),
        "subs": {
            "Cookware": {
                "Frying Pans": ("Frying Pan", ("frying pan", "non stick pan", "skillet", "cast iron skillet"), 35.0, ("28cm", "Induction Ready", "with Lid", "3-Piece Set")),
                "Saucepans": ("Saucepan", ("saucepan", "sauce pan with lid", "milk pan", "cooking pot"), 40.0, ("2 Quart", "with Glass Lid", "Tri-Ply", "Induction Ready")),
                "Dutch Ovens": ("Dutch Oven", ("dutch oven", "enameled dutch oven", "casserole dish", "cast iron pot"), 85.0, ("5.5 Quart", "Enameled", "Round", "Oval")),
            },
            "Kitchen Appliances": {
                "Blenders": ("Blender", ("blender", "smoothie blender", "countertop blender", "personal blender"), 75.0, ("1200W", "64oz Jar", "6 Speeds", "with To-Go Cups")),
                "Coffee Makers": ("Coffee Maker", ("coffee maker", "espresso machine", "drip coffee machine", "pour over coffee maker"), 95.0, ("12-Cup", "Programmable", "with Milk Frother", "Thermal Carafe")),
                "Toasters": ("Toaster", ("toaster", "2 slice toaster", "4 slice toaster", "toaster oven"), 40.0, ("2-Slice", "4-Slice", "Wide Slot", "Bagel Setting")),
            },
            "Cutlery": {
                "Kitchen Knives": ("Chef Knife", ("kitchen knives", "chef knife", "knife set", "santoku knife"), 45.0, ("8-Inch", "Damascus Steel", "5-Piece Set", "with Block")),
                "Cutting Boards": ("Cutting Board", ("cutting board", "wooden cutting board", "chopping board", "bamboo board"), 25.0, ("Bamboo", "Walnut", "Set of 3", "with Juice Groove")),
            },
            "Bedding": {
                "Duvet Covers": ("Duvet Cover", ("duvet cover", "comforter cover", "queen duvet cover", "linen duvet"), 55.0, ("Queen", "King", "100% Cotton", "Washed Linen")),
                "Pillows": ("Pillow", ("pillow", "memory foam pillow", "bed pillows", "down pillow"), 30.0, ("Set of 2", "Memory Foam", "Cooling", "Standard Size")),
                "Sheet Sets": ("Sheet Set", ("sheet set", "bed sheets", "cotton sheets", "fitted sheet"), 50.0, ("Queen", "400 Thread Count", "Deep Pocket", "Percale")),
            },
        },
    },
    "Fashion": {
        "adjectives": ("Slim-Fit", "Casual", "Classic", "Oversized", "Vintage", "Lightweight", "Stretch", "Relaxed"),
        "features": ("soft breathable cotton", "a tailored slim silhouette", "reinforced double stitching", "a stretchy comfortable waistband",
                     "genuine leather trim", "a cushioned insole", "a timeless minimalist design", "machine-washable fabric",
                     "hidden zip pockets", "a water-resistant outer shell"),
        "uses": ("the office", "weekend outings", "date nights", "everyday wear", "the summer season", "layering in autumn"),
        "parts": ("fabric", "stitching", "zipper", "sole", "strap", "seams"),
        "subs": {
            "Women's Clothing": {
                "Dresses": ("Dress", ("dress", "summer dress", "maxi dress", "wrap dress", "midi dress"), 45.0, ("Floral", "Midi", "Maxi", "V-Neck")),
                "Blouses": ("Blouse", ("blouse", "silk blouse", "womens tops", "button up shirt women"), 32.0, ("Chiffon", "Long Sleeve", "Button-Up", "Satin")),
                "Jeans": ("Jeans", ("jeans", "skinny jeans", "high waisted jeans", "mom jeans"), 50.0, ("High-Rise", "Skinny", "Straight Leg", "Distressed")),
            },
            "Men's Clothing": {
                "T-Shirts": ("T-Shirt", ("t shirt", "mens t shirt", "graphic tee", "cotton tee"), 18.0, ("Crew Neck", "Pack of 3", "Organic Cotton", "V-Neck")),
                "Jackets": ("Jacket", ("jacket", "bomber jacket", "rain jacket", "denim jacket", "puffer jacket"), 90.0, ("Waterproof", "Hooded", "Quilted", "Denim")),
                "Chinos": ("Chinos", ("chinos", "mens chinos", "khaki pants", "slim chinos"), 40.0, ("Slim Fit", "Stretch", "Khaki", "Navy")),
            },
            "Shoes": {
                "Sneakers": ("Sneakers", ("sneakers", "white sneakers", "trainers", "casual shoes"), 70.0, ("Leather", "Low-Top", "White", "Knit")),
                "Boots": ("Boots", ("boots", "chelsea boots", "ankle boots", "winter boots", "leather boots"), 110.0, ("Chelsea", "Ankle", "Waterproof", "Suede")),
                "Sandals": ("Sandals", ("sandals", "slide sandals", "flip flops", "strappy sandals"), 35.0, ("Slide", "Cork Footbed", "Strappy", "Platform")),
            },
            "Accessories": {
                "Handbags": ("Handbag", ("handbag", "tote bag", "crossbody bag", "leather purse"), 65.0, ("Leather", "Crossbody", "Tote", "Mini")),
                "Sunglasses": ("Sunglasses", ("sunglasses", "polarized sunglasses", "aviator sunglasses", "shades"), 40.0, ("Polarized", "Aviator", "Round", "UV400")),
                "Watches": ("Watch", ("watch", "mens watch", "womens watch", "analog watch", "chronograph"), 150.0, ("Chronograph", "Leather Strap", "Automatic", "40mm")),
            },
        },
    },
    "Beauty": {
        "adjectives": ("Hydrating", "Gentle", "Long-Lasting", "Vegan", "Nourishing", "Fragrance-Free", "Radiant", "Matte"),
        "features": ("hyaluronic acid", "vitamin C", "a lightweight non-greasy formula", "SPF 50 protection", "natural argan oil",
                     "dermatologist-tested ingredients", "a cruelty-free vegan formula", "buildable full coverage",
                     "shea butter and aloe", "a paraben-free blend"),
        "uses": ("sensitive skin", "a daily skincare routine", "dry and frizzy hair", "all-day wear", "a natural glow", "oily skin"),
        "parts": ("scent", "texture", "pump", "formula", "packaging", "shade"),
        "subs": {
            "Skincare": {
                "Moisturizers": ("Moisturizer", ("moisturizer", "face cream", "night cream", "moisturiser for dry skin"), 28.0, ("50ml", "for Dry Skin", "Oil-Free", "Night Cream")),
                "Serums": ("Face Serum", ("face serum", "vitamin c serum", "retinol serum", "hyaluronic acid serum"), 32.0, ("30ml", "Vitamin C", "Retinol", "Niacinamide")),
                "Sunscreen": ("Sunscreen", ("sunscreen", "spf 50", "sunblock", "face sunscreen"), 18.0, ("SPF 50", "Mineral", "Tinted", "Water-Resistant")),
            },
            "Makeup": {
                "Lipstick": ("Lipstick", ("lipstick", "red lipstick", "matte lipstick", "lip gloss"), 16.0, ("Matte", "Ruby Red", "Nude", "Satin Finish")),
                "Foundation": ("Foundation", ("foundation", "liquid foundation", "full coverage foundation", "bb cream"), 30.0, ("Full Coverage", "30ml", "Dewy", "Shade 120")),
                "Mascara": ("Mascara", ("mascara", "waterproof mascara", "volume mascara", "lengthening mascara"), 14.0, ("Waterproof", "Volumizing", "Black", "Lengthening")),
            },
            "Hair Care": {
                "Shampoo": ("Shampoo", ("shampoo", "sulfate free shampoo", "anti dandruff shampoo", "shampoo for curly hair"), 14.0, ("500ml", "Sulfate-Free", "for Curly Hair", "Volumizing")),
                "Conditioner": ("Conditioner", ("conditioner", "leave in conditioner", "deep conditioner", "hair mask"), 15.0, ("500ml", "Leave-In", "Repairing", "Argan Oil")),
                "Hair Dryers": ("Hair Dryer", ("hair dryer", "blow dryer", "ionic hair dryer", "travel hair dryer"), 60.0, ("1875W", "Ionic", "with Diffuser", "Foldable")),
            },
        },
    },
    "Sports & Outdoors": {
        "adjectives": ("Lightweight", "Breathable", "Waterproof", "Ultralight", "Adjustable", "Durable", "Reflective", "Quick-Dry"),
        "features": ("breathable mesh panels", "a waterproof ripstop shell", "shock-absorbing cushioning", "reflective safety details",
                     "an adjustable padded harness", "non-slip textured grip", "quick-dry moisture-wicking fabric",
                     "a packable design with carry bag", "reinforced anti-tear seams", "an aluminium alloy frame"),
        "uses": ("trail running", "weekend camping trips", "home workouts", "long hikes", "the daily commute by bike", "marathon training"),
        "parts": ("grip", "straps", "padding", "frame", "zipper", "sole"),
        "subs": {
            "Running": {
                "Running Shoes": ("Running Shoes", ("running shoes", "trail running shoes", "jogging shoes", "marathon shoes"), 95.0, ("Trail", "Cushioned", "Carbon Plate", "Wide Fit")),
                "Running Shorts": ("Running Shorts", ("running shorts", "jogging shorts", "shorts with liner", "gym shorts"), 28.0, ("5-Inch", "with Liner", "Zip Pocket", "2-in-1")),
            },
            "Camping": {
                "Tents": ("Tent", ("tent", "camping tent", "2 person tent", "backpacking tent"), 160.0, ("2-Person", "4-Person", "3-Season", "Instant Setup")),
                "Sleeping Bags": ("Sleeping Bag", ("sleeping bag", "down sleeping bag", "mummy sleeping bag", "camping sleeping bag"), 75.0, ("3-Season", "Mummy", "-5C Comfort", "Down Fill")),
                "Backpacks": ("Hiking Backpack", ("hiking backpack", "backpack", "daypack", "trekking rucksack"), 80.0, ("40L", "25L", "with Rain Cover", "Hydration Compatible")),
            },
            "Fitness": {
                "Dumbbells": ("Dumbbell Set", ("dumbbells", "adjustable dumbbells", "weights", "dumbbell set"), 110.0, ("Adjustable", "2x10kg", "Hex", "with Rack")),
                "Yoga Mats": ("Yoga Mat", ("yoga mat", "exercise mat", "non slip yoga mat", "thick yoga mat"), 30.0, ("6mm", "Non-Slip", "with Strap", "TPE")),
                "Resistance Bands": ("Resistance Bands", ("resistance bands", "exercise bands", "loop bands", "pull up bands"), 20.0, ("Set of 5", "Fabric", "Heavy", "with Handles")),
            },
            "Cycling": {
                "Bike Helmets": ("Bike Helmet", ("bike helmet", "cycling helmet", "mtb helmet", "road bike helmet"), 60.0, ("MIPS", "with LED Light", "Road", "Mountain")),
                "Bike Lights": ("Bike Light Set", ("bike lights", "bicycle light", "rechargeable bike light", "front bike light"), 25.0, ("USB Rechargeable", "1000 Lumen", "Front and Rear", "Waterproof")),
            },
        },
    },
    "Toys": {
        "adjectives": ("Colorful", "Educational", "Creative", "Interactive", "Classic", "Deluxe", "Mini", "Magnetic"),
        "features": ("rounded child-safe edges", "non-toxic water-based paint", "hours of imaginative play", "STEM learning activities",
                     "easy-grip pieces for small hands", "bright colours and fun sounds", "a sturdy storage box",
                     "step-by-step picture instructions", "collectible characters", "family game night fun"),
        "uses": ("kids aged 3 and up", "family game night", "birthday gifts", "rainy afternoons", "toddlers", "the classroom"),
        "parts": ("pieces", "colours", "box", "instructions", "paint", "wheels"),
        "subs": {
            "Building Sets": {
                "Building Bricks": ("Building Brick Set", ("building blocks", "building bricks", "brick set", "construction toy"), 45.0, ("500 Pieces", "City Set", "Creative Box", "Starter Kit")),
                "Magnetic Tiles": ("Magnetic Tile Set", ("magnetic tiles", "magnet blocks", "magnetic building set", "magna tiles"), 50.0, ("60 Pieces", "100 Pieces", "with Cars", "Clear Colors")),
            },
            "Games & Puzzles": {
                "Board Games": ("Board Game", ("board game", "family board game", "strategy game", "card game for kids"), 30.0, ("2-6 Players", "Family Edition", "Strategy", "Party")),
                "Jigsaw Puzzles": ("Jigsaw Puzzle", ("jigsaw puzzle", "1000 piece puzzle", "puzzle for adults", "kids puzzle"), 18.0, ("1000 Pieces", "500 Pieces", "Landscape", "Floor Puzzle")),
            },
            "Dolls & Figures": {
                "Dolls": ("Doll", ("doll", "baby doll", "fashion doll", "doll house"), 25.0, ("with Accessories", "30cm", "Soft Body", "Playset")),
                "Action Figures": ("Action Figure", ("action figure", "superhero figure", "dinosaur figure", "robot toy"), 20.0, ("6-Inch", "Poseable", "2-Pack", "with Vehicle")),
            },
            "Outdoor Play": {
                "Kites": ("Kite", ("kite", "kite for kids", "stunt kite", "beach kite"), 22.0, ("Delta", "Rainbow", "with 100m Line", "Easy Flyer")),
                "Scooters": ("Kick Scooter", ("scooter", "kids scooter", "kick scooter", "3 wheel scooter"), 60.0, ("3-Wheel", "Foldable", "LED Wheels", "Adjustable Height")),
                "Water Toys": ("Water Blaster", ("water gun", "water blaster", "pool toys", "splash toy"), 15.0, ("2-Pack", "Long Range", "Pump Action", "Pool Set")),
            },
        },
    },
    "Books": {
        "adjectives": ("Bestselling", "Illustrated", "Paperback", "Hardcover", "Award-Winning", "Collector's", "Unabridged", "Classic"),
        "features": ("a gripping plot with unexpected twists", "vivid well-drawn characters", "beautiful full-colour illustrations",
                     "meticulously researched chapters", "step-by-step recipes with photos", "an unforgettable narrator",
                     "short chapters perfect for bedtime", "a foreword by the author", "a glossary and an index", "an atmospheric setting"),
        "uses": ("book club discussions", "bedtime reading", "a long flight", "curious young readers", "history lovers", "weekend reading"),
        "parts": ("plot", "characters", "writing", "ending", "illustrations", "pages"),
        "subs": {
            "Fiction": {
                "Mystery Novels": ("Mystery Novel", ("mystery novel", "detective book", "crime thriller", "murder mystery book"), 15.0, ("Paperback", "Book 1 of Series", "Hardcover", "Large Print")),
                "Science Fiction": ("Science Fiction Novel", ("science fiction book", "sci fi novel", "space opera", "dystopian novel"), 16.0, ("Paperback", "Trilogy Box Set", "Hardcover", "Anniversary Edition")),
                "Romance Novels": ("Romance Novel", ("romance novel", "love story book", "romantic comedy book", "historical romance"), 12.0, ("Paperback", "Kindle Edition", "Book 2", "Special Edition")),
            },
            "Non-Fiction": {
                "Biographies": ("Biography", ("biography", "memoir", "autobiography", "life story book"), 20.0, ("Hardcover", "Paperback", "Illustrated", "Audiobook CD")),
                "Cookbooks": ("Cookbook", ("cookbook", "recipe book", "vegetarian cookbook", "baking book"), 25.0, ("Hardcover", "100 Recipes", "Vegetarian", "Quick Meals")),
                "History Books": ("History Book", ("history book", "world history", "ancient rome book", "military history"), 22.0, ("Hardcover", "Paperback", "with Maps", "Volume 1")),
            },
            "Children's Books": {
                "Picture Books": ("Picture Book", ("picture book", "bedtime story book", "toddler book", "board book"), 10.0, ("Board Book", "Hardcover", "Ages 2-5", "Lift-the-Flap")),
                "Early Readers": ("Early Reader Book", ("early reader", "learn to read books", "phonics books", "chapter book for kids"), 8.0, ("Level 1", "Box Set of 10", "Ages 5-7", "Paperback")),
            },
        },
    },
    "Grocery": {
        "adjectives": ("Organic", "Gluten-Free", "Fair Trade", "Premium", "Family-Size", "Natural", "Low-Sugar", "Artisan"),
        "features": ("no artificial flavours or preservatives", "sustainably sourced ingredients", "a rich full-bodied taste",
                     "certified organic farming", "resealable freshness packaging", "a good source of fibre", "cold-pressed quality",
                     "small-batch roasting", "a hint of sea salt", "high protein content"),
        "uses": ("healthy snacking", "the morning cup", "quick weeknight dinners", "lunch boxes", "entertaining guests", "the pantry"),
        "parts": ("taste", "flavour", "packaging", "freshness", "aroma", "texture"),
        "subs": {
            "Beverages": {
                "Coffee Beans": ("Coffee Beans", ("coffee beans", "whole bean coffee", "espresso beans", "ground coffee"), 16.0, ("1kg", "Medium Roast", "Dark Roast", "Single Origin")),
                "Green Tea": ("Green Tea", ("green tea", "matcha", "tea bags", "loose leaf tea"), 9.0, ("100 Bags", "Matcha Powder", "Loose Leaf", "Jasmine")),
                "Sparkling Water": ("Sparkling Water", ("sparkling water", "mineral water", "soda water", "flavored water"), 12.0, ("24-Pack", "Lemon", "Unflavored", "Glass Bottles")),
            },
            "Snacks": {
                "Potato Chips": ("Potato Chips", ("potato chips", "crisps", "kettle chips", "salt and vinegar chips"), 4.0, ("Sea Salt", "12-Pack", "Salt & Vinegar", "Family Bag")),
                "Granola Bars": ("Granola Bars", ("granola bars", "protein bars", "cereal bars", "snack bars"), 7.0, ("Box of 12", "Honey Oat", "Peanut Butter", "Chocolate Chip")),
                "Dark Chocolate": ("Dark Chocolate Bar", ("dark chocolate", "chocolate bar", "70 cocoa chocolate", "vegan chocolate"), 5.0, ("70% Cocoa", "85% Cocoa", "Sea Salt", "Pack of 5")),
            },
            "Pantry": {
                "Olive Oil": ("Extra Virgin Olive Oil", ("olive oil", "extra virgin olive oil", "cooking oil", "evoo"), 14.0, ("1L", "500ml", "Cold-Pressed", "Italian")),
                "Pasta": ("Pasta", ("pasta", "spaghetti", "penne", "whole wheat pasta"), 3.0, ("500g", "Spaghetti", "Penne", "Pack of 6")),
                "Spices": ("Spice Set", ("spices", "spice set", "smoked paprika", "curry powder", "seasoning"), 12.0, ("Set of 12", "Smoked Paprika", "Garam Masala", "Refill Pack")),
            },
        },
    },
}

TOP_WEIGHTS: dict[str, float] = {
    "Electronics": 1.3, "Home & Kitchen": 1.2, "Fashion": 1.4, "Beauty": 0.9,
    "Sports & Outdoors": 0.9, "Toys": 0.7, "Books": 0.8, "Grocery": 0.8,
}

#: (brand, top categories it sells in)
BRANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Acme", ("Electronics", "Home & Kitchen", "Sports & Outdoors")), ("Voltra", ("Electronics",)),
    ("Sonique", ("Electronics",)), ("Pixelon", ("Electronics",)), ("Nordvik", ("Electronics", "Home & Kitchen")),
    ("Quanta", ("Electronics",)), ("Zephyr Audio", ("Electronics",)), ("Lumora", ("Electronics", "Beauty")),
    ("Kitchora", ("Home & Kitchen",)), ("Ferrum & Co", ("Home & Kitchen",)), ("Casa Bella", ("Home & Kitchen",)),
    ("Hearthstone", ("Home & Kitchen",)), ("Blendwell", ("Home & Kitchen",)), ("Dormio", ("Home & Kitchen",)),
    ("Oakridge", ("Home & Kitchen", "Fashion")), ("Velluto", ("Fashion",)), ("Marlowe", ("Fashion",)),
    ("Urban Thread", ("Fashion",)), ("Solana", ("Fashion", "Beauty")), ("Kestrel", ("Fashion", "Sports & Outdoors")),
    ("Atelier Nine", ("Fashion",)), ("Birchwood", ("Fashion",)), ("Driftwood", ("Fashion", "Sports & Outdoors")),
    ("Glowe", ("Beauty",)), ("Purelle", ("Beauty",)), ("Verdana Botanics", ("Beauty",)), ("Silkara", ("Beauty",)),
    ("Dermacore", ("Beauty",)), ("Aurelia", ("Beauty", "Fashion")), ("Summitline", ("Sports & Outdoors",)),
    ("Trailhawk", ("Sports & Outdoors",)), ("Ironpeak", ("Sports & Outdoors",)), ("Velocita", ("Sports & Outdoors",)),
    ("Northfold", ("Sports & Outdoors", "Fashion")), ("Aquaterra", ("Sports & Outdoors", "Toys")),
    ("Brickwise", ("Toys",)), ("Tinker Town", ("Toys",)), ("Playfield", ("Toys", "Sports & Outdoors")),
    ("Wonderkin", ("Toys", "Books")), ("Puzzlecraft", ("Toys",)), ("Robobo", ("Toys", "Electronics")),
    ("Penwright Press", ("Books",)), ("Inkwell Books", ("Books",)), ("Lantern House", ("Books",)),
    ("Foxglove Publishing", ("Books",)), ("Little Acorn", ("Books", "Toys")), ("Harbor Lane", ("Books",)),
    ("Terra Verde", ("Grocery",)), ("Golden Mill", ("Grocery",)), ("Bean & Leaf", ("Grocery",)),
    ("Olivara", ("Grocery",)), ("Crunchy Valley", ("Grocery",)), ("Cocoa Cove", ("Grocery",)),
    ("Fresh Harvest", ("Grocery", "Beauty")), ("Everyday Basics", ("Home & Kitchen", "Grocery", "Beauty")),
    ("Primo", ("Home & Kitchen", "Grocery")), ("Zenith", ("Electronics", "Sports & Outdoors")),
    ("Cobalt", ("Electronics", "Fashion")), ("Meridian", ("Fashion", "Home & Kitchen")), ("Alto", ("Electronics", "Home & Kitchen")),
)

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Daniel", "Karen", "Matthew", "Nancy",
    "Anthony", "Lisa", "Mark", "Emma", "Oliver", "Sophie", "Lukas", "Hannah", "Leon", "Mia", "Lucas", "Chloe",
    "Hugo", "Camille", "Arjun", "Priya", "Rahul", "Ananya", "Wei", "Mei", "Hiroshi", "Yuki", "Carlos", "Sofia",
    "Mateo", "Valentina", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Isabella", "Amir", "Fatima", "Omar", "Layla",
    "Jan", "Anna",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Muller", "Schmidt", "Schneider", "Fischer",
    "Weber", "Dubois", "Lefevre", "Moreau", "Bernard", "Sharma", "Patel", "Singh", "Gupta", "Wang", "Li", "Zhang",
    "Chen", "Tanaka", "Suzuki", "Sato", "Rossi", "Russo", "Ferrari", "Silva", "Santos", "Oliveira", "Kowalski",
    "Nowak", "Jansen", "de Vries", "Hansen", "Larsen",
)

#: country, weight, phone country code, national number length, local email domains
COUNTRIES: tuple[tuple[str, float, str, int, tuple[str, ...]], ...] = (
    ("US", 38.0, "1", 10, ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com")),
    ("GB", 10.0, "44", 10, ("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk")),
    ("DE", 9.0, "49", 11, ("gmail.com", "web.de", "gmx.de", "t-online.de")),
    ("FR", 7.0, "33", 9, ("gmail.com", "orange.fr", "free.fr", "laposte.net")),
    ("CA", 6.0, "1", 10, ("gmail.com", "outlook.com", "yahoo.ca")),
    ("IN", 6.0, "91", 10, ("gmail.com", "rediffmail.com", "yahoo.in")),
    ("AU", 4.0, "61", 9, ("gmail.com", "bigpond.com", "outlook.com")),
    ("NL", 3.5, "31", 9, ("gmail.com", "ziggo.nl", "outlook.com")),
    ("ES", 3.5, "34", 9, ("gmail.com", "hotmail.es", "yahoo.es")),
    ("IT", 3.0, "39", 10, ("gmail.com", "libero.it", "virgilio.it")),
    ("BR", 3.0, "55", 11, ("gmail.com", "uol.com.br", "hotmail.com")),
    ("JP", 2.5, "81", 10, ("gmail.com", "yahoo.co.jp", "docomo.ne.jp")),
    ("SE", 1.5, "46", 9, ("gmail.com", "telia.com", "outlook.com")),
    ("PL", 1.5, "48", 9, ("gmail.com", "wp.pl", "onet.pl")),
    ("MX", 1.5, "52", 10, ("gmail.com", "hotmail.com", "yahoo.com.mx")),
)

#: other currencies a faulty price may arrive in: code → units per USD
FX_RATES: dict[str, float] = {"EUR": 0.92, "GBP": 0.79}
